# Bridge's webhooks (README: "Webhooks"). Bridge signs them, so no CSRF token; it retries
# until it gets a 2xx, with the same X-Bridge-Webhook-Id each time.
class WebhooksController < ApplicationController
  skip_forgery_protection

  def create
    body = request.raw_post
    unless bridge.valid_webhook?(request.headers["X-Pusher-Key"], request.headers["X-Pusher-Signature"], body)
      return head :unauthorized
    end

    events = parse_events(body)
    return head :bad_request unless events

    messages = Message.from_client_events(events)
    # One short transaction, then 2xx: the receipt and the messages are on disk before Bridge
    # forgets the webhook. Anything slow belongs in a job enqueued from here.
    Message.transaction do
      WebhookReceipt.create!(delivery_id: delivery_id) if delivery_id
      messages.each(&:save!)
    end
    head :ok
  rescue ActiveRecord::RecordNotUnique
    head :ok # a retry of a delivery already stored: acknowledged again, stored once
  end

  private

  # {"time_ms": …, "events": [ … ]} → the events, or nil for anything else.
  def parse_events(body)
    payload = JSON.parse(body)
    payload["events"] if payload.is_a?(Hash) && payload["events"].is_a?(Array)
  rescue JSON::ParserError
    nil
  end

  # Ids count up per Bridge data directory; with the app key a fresh Bridge (new app, new key)
  # cannot collide with deliveries stored from an old one.
  def delivery_id
    id = request.headers["X-Bridge-Webhook-Id"]
    "#{request.headers['X-Pusher-Key']}:#{id}" if id.present?
  end
end
