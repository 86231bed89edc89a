require "test_helper"

class PageControllerTest < ActionDispatch::IntegrationTest
  setup do
    @bridge = FakeBridge.new("/api/sessions" => [200, { jwt: "aaa.bbb.ccc", organization: "acme-inc" }])
    bridge_config.merge!(host: @bridge.host, secret_token: "org-secret-token")
  end

  teardown do
    @bridge.stop
  end

  test "renders the chat with the JWT it got for the secret token, and Bridge's client" do
    get root_path
    assert_response :ok

    sessions = @bridge.requests
    assert_equal 1, sessions.size
    assert_equal ["POST", "/api/sessions"], [sessions.first.method, sessions.first.path]
    assert_equal "application/x-www-form-urlencoded", sessions.first.headers["content-type"]
    assert_equal({ "token" => "org-secret-token" }, URI.decode_www_form(sessions.first.body).to_h)

    assert_includes response.body, %(window.guardian_token = "aaa.bbb.ccc";)
    assert_includes response.body, %(window.org_id = "acme-inc";)
    assert_includes response.body, %(window.app_key = "test-key";)
    assert_includes response.body, %(window.pusher_host = "#{@bridge.host}";)
    assert_match(/window\.user_name = "guest-\h{6}";/, response.body)
    assert_select "script[src=?]", "http://#{@bridge.host}/js/pusher.js"
    assert_select "script[src=?]", "/chat.js"
    assert_select "form#send[action=?]", messages_path
    refute_includes response.body, "org-secret-token"
    refute_includes response.body, "test-secret"
  end

  test "shows the stored messages" do
    Message.create!(name: "bob", body: "earlier <b>news</b>", channel: "general", source: "socket")
    get root_path
    assert_select "#chat p", text: "bob earlier <b>news</b>"
  end

  test "without a secret token it asks Bridge for nothing and the page uses the auth endpoint" do
    bridge_config[:secret_token] = ""
    get root_path
    assert_response :ok
    assert_empty @bridge.requests
    assert_includes response.body, %(window.guardian_token = "";)
  end

  test "a secret token of another organization is an error" do
    bridge_config[:organization] = "globex"
    assert_raises(BridgeClient::Error) { get root_path }
  end

  test "a session Bridge refuses is an error, not a page without a JWT" do
    refusing = FakeBridge.new("/api/sessions" => [401, { error: "invalid token" }])
    bridge_config[:host] = refusing.host
    assert_raises(BridgeClient::Error) { get root_path }
  ensure
    refusing&.stop
  end
end
