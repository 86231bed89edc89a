# Publishes a stored message to its channel with a signed HTTP API request. It runs on the
# :async adapter's thread pool, so the request that posted the message does not wait for Bridge.
class PublishMessageJob < ApplicationJob
  queue_as :default
  retry_on BridgeClient::Error, SystemCallError, Net::OpenTimeout, Net::ReadTimeout,
           wait: :exponentially_longer, attempts: 5

  def perform(message)
    BridgeClient.from_config.trigger(message.channel, Message::EVENT, message.payload)
  end
end
