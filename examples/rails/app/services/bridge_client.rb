require "net/http"
require "openssl"
require "digest/md5"

# What this app asks of Bridge and checks from it, with Net::HTTP and OpenSSL only (Debian
# packages no Pusher gem):
# - session_jwt: trade the organization's secret token for a JWT (the seed API);
# - trigger: publish an event with a signed Pusher HTTP API request;
# - authorize_channel: sign a presence subscription (Pusher's auth endpoint answer);
# - valid_webhook?: check a webhook's key and signature.
class BridgeClient
  class Error < StandardError; end

  def self.from_config(config = Rails.configuration.x.bridge)
    new(host: config.host, app_id: config.app_id, app_key: config.app_key, app_secret: config.app_secret,
        organization: config.organization, secret_token: config.secret_token)
  end

  def initialize(host:, app_id:, app_key:, app_secret:, organization: nil, secret_token: nil, timeout: 5)
    @host = host
    @app_id = app_id.to_s
    @app_key = app_key
    @app_secret = app_secret
    @organization = organization
    @secret_token = secret_token
    @timeout = timeout
  end

  # POST /api/sessions with the secret token (form-encoded, as the article did) → the JWT, once
  # it is known to be the configured organization's (another's would only fail in the browser).
  def session_jwt
    response = post("/api/sessions", URI.encode_www_form(token: @secret_token),
                    "application/x-www-form-urlencoded")
    session = JSON.parse(response.body)
    if @organization.present? && session["organization"] != @organization
      raise Error, "the secret token is organization #{session['organization'].inspect}'s, not #{@organization.inspect}'s"
    end
    session.fetch("jwt")
  end

  # POST /apps/{id}/events: `data` goes out JSON-encoded, as every Pusher library sends it.
  def trigger(channel, event, data)
    path = "/apps/#{@app_id}/events"
    body = { name: event, channels: [channel], data: data.to_json }.to_json
    post("#{path}?#{signed_query('POST', path, body)}", body, "application/json")
  end

  # The query string of a signed request (Pusher's HTTP API authentication): the auth_
  # parameters, and auth_signature = hex HMAC-SHA256 of "METHOD\nPATH\nPARAMS" with the app
  # secret, PARAMS the other parameters sorted by name, joined unescaped.
  def signed_query(method, path, body, timestamp: Time.now.to_i)
    params = {
      "auth_key" => @app_key,
      "auth_timestamp" => timestamp.to_s,
      "auth_version" => "1.0",
      "body_md5" => Digest::MD5.hexdigest(body),
    }
    string_to_sign = [method, path, params.sort.map { |name, value| "#{name}=#{value}" }.join("&")].join("\n")
    params["auth_signature"] = hmac(string_to_sign)
    URI.encode_www_form(params)
  end

  # Pusher's answer to a presence subscription: "key:HMAC(socket_id:channel:channel_data)".
  def authorize_channel(socket_id, channel, user_id:)
    channel_data = { user_id: user_id }.to_json
    { auth: "#{@app_key}:#{hmac("#{socket_id}:#{channel}:#{channel_data}")}", channel_data: channel_data }
  end

  # X-Pusher-Key must be ours and X-Pusher-Signature the HMAC of the exact body, compared in
  # constant time.
  def valid_webhook?(key, signature, body)
    ActiveSupport::SecurityUtils.secure_compare(key.to_s, @app_key) &&
      ActiveSupport::SecurityUtils.secure_compare(signature.to_s, hmac(body))
  end

  private

  def hmac(message)
    OpenSSL::HMAC.hexdigest("SHA256", @app_secret, message)
  end

  def post(path_and_query, body, content_type)
    bridge_host, port = @host.split(":", 2)
    http = Net::HTTP.new(bridge_host, (port || 80).to_i)
    http.open_timeout = http.read_timeout = @timeout
    response = http.post(path_and_query, body, "Content-Type" => content_type)
    unless response.is_a?(Net::HTTPSuccess)
      raise Error, "Bridge answered #{response.code} to POST #{path_and_query.split('?').first}: #{response.body.to_s[0, 200]}"
    end
    response
  end
end
