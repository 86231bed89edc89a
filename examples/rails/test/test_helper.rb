ENV["RAILS_ENV"] ||= "test"
require_relative "../config/environment"
require "rails/test_help"
require_relative "support/fake_bridge"

class ActiveSupport::TestCase
  # Fixed Bridge credentials for every test, whatever the environment says; restored afterwards.
  BRIDGE = { host: "127.0.0.1:9", organization: "acme-inc", secret_token: "",
             app_id: "42", app_key: "test-key", app_secret: "test-secret" }.freeze

  setup do
    @saved_bridge_config = bridge_config.dup
    bridge_config.merge!(BRIDGE)
  end

  teardown do
    bridge_config.replace(@saved_bridge_config)
  end

  def bridge_config
    Rails.configuration.x.bridge
  end

  def hmac_sha256_hex(key, message)
    OpenSSL::HMAC.hexdigest("SHA256", key, message)
  end
end
