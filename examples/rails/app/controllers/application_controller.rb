class ApplicationController < ActionController::Base
  private

  def bridge
    @bridge ||= BridgeClient.from_config
  end

  # Who this browser is in the chat: a guest name kept in the session, also its presence user id.
  def user_name
    session[:user_name] ||= "guest-#{SecureRandom.hex(3)}"
  end
  helper_method :user_name
end
