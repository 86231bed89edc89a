Rails.application.routes.draw do
  root "page#index"
  resources :messages, only: [:index, :create]

  # Bridge calls these: its webhooks, and (without a JWT) presence channel authorization.
  post "bridge/webhooks", to: "webhooks#create"
  post "bridge/auth", to: "channel_auths#create"
end
