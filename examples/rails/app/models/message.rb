# A chat message, stored once whichever way it was sent (README: "Where messages are stored").
class Message < ApplicationRecord
  CHANNEL = "general"
  PRESENCE_CHANNEL = "presence-general"
  EVENT = "new_message"

  validates :name, presence: true, length: { maximum: 100 }
  validates :body, presence: true, length: { maximum: 2_000 }
  validates :channel, presence: true
  validates :source, inclusion: { in: %w[socket app] }

  scope :chronological, -> { order(:created_at, :id) }

  # The chat messages among a webhook's events: each client_event "new_message" whose data (the
  # JSON the browser sent) has a name and a message. Anything else is not a chat message.
  def self.from_client_events(events)
    events.filter_map do |event|
      next unless event.is_a?(Hash) && event["name"] == "client_event" && event["event"] == EVENT

      data = decode(event["data"])
      next unless data.is_a?(Hash)

      message = new(name: data["name"], body: data["message"], channel: event["channel"], source: "socket")
      message if message.valid?
    end
  end

  def self.decode(data)
    data.is_a?(String) ? JSON.parse(data) : data
  rescue JSON::ParserError
    nil
  end
  private_class_method :decode

  # What the channel's subscribers receive as the event's data: the article's payload.
  def payload
    { id: id, name: name, message: body }
  end
end
