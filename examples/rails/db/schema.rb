# This file is auto-generated from the current state of the database. Instead
# of editing this file, please use the migrations feature of Active Record to
# incrementally modify your database, and then regenerate this schema definition.
#
# This file is the source Rails uses to define your schema when running `bin/rails
# db:schema:load`. When creating a new database, `bin/rails db:schema:load` tends to
# be faster and is potentially less error prone than running all of your
# migrations from scratch. Old migrations may fail to apply correctly if those
# migrations use external dependencies or application code.
#
# It's strongly recommended that you check this file into your version control system.

ActiveRecord::Schema.define(version: 2025_01_01_000002) do

  create_table "messages", force: :cascade do |t|
    t.string "name", null: false
    t.text "body", null: false
    t.string "channel", null: false
    t.string "source", null: false
    t.datetime "created_at", precision: 6, null: false
    t.datetime "updated_at", precision: 6, null: false
  end

  create_table "webhook_receipts", force: :cascade do |t|
    t.string "delivery_id", null: false
    t.datetime "created_at", null: false
    t.index ["delivery_id"], name: "index_webhook_receipts_on_delivery_id", unique: true
  end

end
