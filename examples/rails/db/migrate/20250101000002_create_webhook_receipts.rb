class CreateWebhookReceipts < ActiveRecord::Migration[6.1]
  def change
    # One row per webhook delivery handled: Bridge sends the same X-Bridge-Webhook-Id on every
    # retry, and the unique index turns a second delivery into a no-op.
    create_table :webhook_receipts do |t|
      t.string :delivery_id, null: false
      t.datetime :created_at, null: false
    end
    add_index :webhook_receipts, :delivery_id, unique: true
  end
end
