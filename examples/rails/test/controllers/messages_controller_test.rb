require "test_helper"

class MessagesControllerTest < ActionDispatch::IntegrationTest
  include ActiveJob::TestHelper

  test "the form stores the message and leaves publishing to a job" do
    assert_difference -> { Message.count }, 1 do
      post messages_path, params: { message: { name: "ana", body: "hi all" } }
    end
    assert_redirected_to root_path
    message = Message.last
    assert_equal ["ana", "hi all", "general", "app"], [message.name, message.body, message.channel, message.source]
    assert_enqueued_with(job: PublishMessageJob, args: [message])
  end

  test "as JSON it answers 202 with the payload, or 422 for an empty message" do
    post messages_path(format: :json), params: { message: { name: "ana", body: "json" } }
    assert_response :accepted
    assert_equal({ "id" => Message.last.id, "name" => "ana", "message" => "json" }, response.parsed_body)

    post messages_path(format: :json), params: { message: { name: "ana", body: "" } }
    assert_response :unprocessable_entity
    assert_equal 1, Message.count
    assert_enqueued_jobs 1
  end

  test "the history lists every message, also as JSON" do
    Message.create!(name: "ana", body: "first", channel: "general", source: "socket")
    Message.create!(name: "bob", body: "second", channel: "general", source: "app")
    get messages_path
    assert_select "tbody tr", 2
    get messages_path(format: :json)
    assert_equal [%w[ana first socket], %w[bob second app]],
                 response.parsed_body.map { |m| m.values_at("name", "body", "source") }
  end
end
