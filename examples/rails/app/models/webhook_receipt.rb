class WebhookReceipt < ApplicationRecord
end
