# Pusher's authorization endpoint, for pages without a JWT (no organization configured): the
# browser may join the presence channel, as its session's user, and nothing else.
class ChannelAuthsController < ApplicationController
  def create
    channel = params.require(:channel_name)
    return head :forbidden unless channel == Message::PRESENCE_CHANNEL

    render json: bridge.authorize_channel(params.require(:socket_id), channel, user_id: user_name)
  end
end
