require_relative "boot"

require "rails"
# Only the frameworks the chat uses: no mailers, storage, cable or asset pipeline.
require "active_model/railtie"
require "active_job/railtie"
require "active_record/railtie"
require "action_controller/railtie"
require "action_view/railtie"
require "rails/test_unit/railtie"

Bundler.require(*Rails.groups)

module Chat
  class Application < Rails::Application
    config.load_defaults 6.1

    # Where Bridge is and this app's credentials there (config/bridge.yml, from the environment).
    config.x.bridge = config_for(:bridge)

    # Jobs run on a thread pool inside the web process: nothing else to install or start.
    config.active_job.queue_adapter = :async

    config.logger = ActiveSupport::Logger.new($stdout) if ENV["RAILS_LOG_TO_STDOUT"].present?
  end
end
