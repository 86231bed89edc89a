require "test_helper"

class PublishMessageJobTest < ActiveJob::TestCase
  setup do
    @bridge = FakeBridge.new("/apps/42/events" => [200, {}])
    bridge_config[:host] = @bridge.host
    @message = Message.create!(name: "ana", body: "hello", channel: "general", source: "app")
  end

  teardown do
    @bridge.stop
  end

  test "publishes the message with a correctly signed HTTP API request" do
    PublishMessageJob.perform_now(@message)

    assert_equal 1, @bridge.requests.size
    request = @bridge.requests.first
    assert_equal ["POST", "/apps/42/events"], [request.method, request.path]
    assert_equal "application/json", request.headers["content-type"]

    # The body: Pusher's trigger, with the data JSON-encoded.
    event = JSON.parse(request.body)
    assert_equal({ "name" => "new_message", "channels" => ["general"] }, event.except("data"))
    assert_equal({ "id" => @message.id, "name" => "ana", "message" => "hello" }, JSON.parse(event["data"]))

    # The signature, recomputed from the request as Bridge does it.
    query = request.query
    assert_equal %w[auth_key auth_signature auth_timestamp auth_version body_md5], query.keys.sort
    assert_equal ["test-key", "1.0"], query.values_at("auth_key", "auth_version")
    assert_equal Digest::MD5.hexdigest(request.body), query["body_md5"]
    assert_in_delta Time.now.to_i, query["auth_timestamp"].to_i, 30
    signed = query.except("auth_signature").sort.map { |name, value| "#{name}=#{value}" }.join("&")
    assert_equal hmac_sha256_hex("test-secret", "POST\n/apps/42/events\n#{signed}"), query["auth_signature"]
  end

  test "a publish Bridge refuses is retried later" do
    refusing = FakeBridge.new("/apps/42/events" => [503, { error: "busy" }])
    bridge_config[:host] = refusing.host
    assert_enqueued_with(job: PublishMessageJob, args: [@message]) do
      PublishMessageJob.perform_now(@message)
    end
    assert_equal 1, refusing.requests.size
  ensure
    refusing&.stop
  end
end
