class MessagesController < ApplicationController
  # The history: every stored message, oldest first (also as JSON: /messages.json).
  def index
    @messages = Message.chronological
    respond_to do |format|
      format.html
      format.json { render json: @messages.as_json(only: %i[id name body channel source created_at]) }
    end
  end

  # Sending through the app: store the message, answer at once, publish from a job.
  def create
    message = Message.new(message_params.merge(channel: Message::CHANNEL, source: "app"))
    if message.save
      PublishMessageJob.perform_later(message)
      respond_to do |format|
        format.html { redirect_to root_path }
        format.json { render json: message.payload, status: :accepted }
      end
    else
      respond_to do |format|
        format.html { redirect_to root_path, alert: message.errors.full_messages.to_sentence }
        format.json { render json: { errors: message.errors.full_messages }, status: :unprocessable_entity }
      end
    end
  end

  private

  def message_params
    params.require(:message).permit(:name, :body)
  end
end
