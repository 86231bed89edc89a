# The article's PageController: trade the organization's secret token for a JWT on the server
# (the token never reaches the browser) and render the chat with it.
class PageController < ApplicationController
  def index
    @bridge_config = Rails.configuration.x.bridge
    @guardian_token = bridge.session_jwt if @bridge_config.secret_token.present?
    @messages = Message.chronological.last(50)
  end
end
