require "test_helper"

class WebhooksControllerTest < ActionDispatch::IntegrationTest
  setup do
    # The webhook endpoint must work with CSRF protection on, as it is outside the tests.
    @forgery_protection = ActionController::Base.allow_forgery_protection
    ActionController::Base.allow_forgery_protection = true
  end

  teardown do
    ActionController::Base.allow_forgery_protection = @forgery_protection
  end

  # Bridge's webhook for a seed-mode trigger on "general", as it arrives (data is the JSON the
  # browser sent).
  def chat_webhook(name: "ana", message: "hello", channel: "general")
    { time_ms: 1_700_000_000_000,
      events: [{ name: "client_event", channel: channel, event: "new_message",
                 data: { name: name, message: message }.to_json, socket_id: "123.456" }] }.to_json
  end

  def deliver(body, id: "1", key: BRIDGE[:app_key], signature: hmac_sha256_hex(BRIDGE[:app_secret], body))
    headers = { "Content-Type" => "application/json", "X-Pusher-Key" => key, "X-Pusher-Signature" => signature }
    headers["X-Bridge-Webhook-Id"] = id if id
    post "/bridge/webhooks", params: body, headers: headers
  end

  test "a signed client_event webhook stores its chat message" do
    assert_difference -> { Message.count }, 1 do
      deliver(chat_webhook(name: "ana", message: "hello"))
    end
    assert_response :ok
    message = Message.last
    assert_equal ["ana", "hello", "general", "socket"], [message.name, message.body, message.channel, message.source]
  end

  test "every chat message of a batched webhook is stored" do
    body = { time_ms: 1, events: [
      { name: "client_event", channel: "general", event: "new_message", data: { name: "a", message: "one" }.to_json },
      { name: "member_added", channel: "presence-general", user_id: "a" },
      { name: "client_event", channel: "general", event: "new_message", data: { name: "b", message: "two" }.to_json },
    ] }.to_json
    deliver(body)
    assert_response :ok
    assert_equal [%w[a one], %w[b two]], Message.chronological.pluck(:name, :body)
  end

  test "a bad signature, a wrong key or missing headers get 401 and store nothing" do
    body = chat_webhook
    deliver(body, signature: hmac_sha256_hex("another-secret", body))
    assert_response :unauthorized
    deliver(body.sub("hello", "hellO"), signature: hmac_sha256_hex(BRIDGE[:app_secret], body))
    assert_response :unauthorized
    deliver(body, key: "another-key")
    assert_response :unauthorized
    post "/bridge/webhooks", params: body, headers: { "Content-Type" => "application/json" }
    assert_response :unauthorized
    assert_equal 0, Message.count
    assert_equal 0, WebhookReceipt.count
  end

  test "a retried delivery (same X-Bridge-Webhook-Id) is acknowledged and stored once" do
    body = chat_webhook(message: "once")
    3.times do
      deliver(body, id: "77")
      assert_response :ok
    end
    assert_equal ["once"], Message.pluck(:body)

    # Another delivery with the same content is another message.
    deliver(body, id: "78")
    assert_response :ok
    assert_equal %w[once once], Message.pluck(:body)
  end

  test "events that are not chat messages are acknowledged and not stored" do
    body = { time_ms: 1, events: [
      { name: "channel_occupied", channel: "general" },
      { name: "client_event", channel: "general", event: "typing", data: { name: "a" }.to_json },
      { name: "client_event", channel: "general", event: "new_message", data: "not json" },
      { name: "client_event", channel: "general", event: "new_message", data: { name: "a", message: "" }.to_json },
    ] }.to_json
    deliver(body)
    assert_response :ok
    assert_equal 0, Message.count
  end

  test "a signed body that is not a webhook gets 400" do
    ["not json", "[]", { events: "x" }.to_json].each do |body|
      deliver(body)
      assert_response :bad_request
    end
  end
end
