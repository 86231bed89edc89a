require "test_helper"

class ChannelAuthsControllerTest < ActionDispatch::IntegrationTest
  test "signs the presence channel for the session's user" do
    get root_path # gives the session its guest name
    user = response.body[/window\.user_name = "([^"]+)"/, 1]
    assert user

    post "/bridge/auth", params: { socket_id: "123.456", channel_name: "presence-general" }
    assert_response :ok
    answer = response.parsed_body
    assert_equal({ "user_id" => user }, JSON.parse(answer["channel_data"]))
    signature = hmac_sha256_hex("test-secret", "123.456:presence-general:#{answer['channel_data']}")
    assert_equal "test-key:#{signature}", answer["auth"]
  end

  test "refuses any other channel" do
    post "/bridge/auth", params: { socket_id: "123.456", channel_name: "private-admin" }
    assert_response :forbidden
  end
end
