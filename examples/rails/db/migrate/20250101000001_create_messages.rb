class CreateMessages < ActiveRecord::Migration[6.1]
  def change
    create_table :messages do |t|
      t.string :name, null: false
      t.text :body, null: false
      t.string :channel, null: false
      # "socket": a browser sent it over the WebSocket (stored from its client_event webhook);
      # "app": posted to this app, stored here and published by PublishMessageJob.
      t.string :source, null: false
      t.timestamps
    end
  end
end
