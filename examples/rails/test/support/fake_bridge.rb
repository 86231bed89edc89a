require "webrick"

# A real HTTP server on a free loopback port standing in for Bridge: it records every request
# and answers each path from a table of canned [status, body] answers (404 for the rest).
class FakeBridge
  Request = Struct.new(:method, :path, :query, :headers, :body, keyword_init: true)

  def initialize(answers = {})
    @answers = answers
    @requests = []
    @lock = Mutex.new
    @server = WEBrick::HTTPServer.new(BindAddress: "127.0.0.1", Port: 0,
                                      Logger: WEBrick::Log.new(File::NULL), AccessLog: [])
    @server.mount_proc("/") { |request, response| answer(request, response) }
    @thread = Thread.new { @server.start }
  end

  def host
    "127.0.0.1:#{@server.config[:Port]}"
  end

  # Requests are recorded before they are answered, so a client that got its answer finds its
  # request here.
  def requests
    @lock.synchronize { @requests.dup }
  end

  def stop
    @server.shutdown
    @thread.join(5)
  end

  private

  def answer(request, response)
    @lock.synchronize do
      @requests << Request.new(method: request.request_method, path: request.path,
                               query: URI.decode_www_form(request.query_string.to_s).to_h,
                               headers: request.header.transform_values(&:first), body: request.body.to_s)
    end
    status, body = @answers.fetch(request.path, [404, { error: "not found" }])
    response.status = status
    response["Content-Type"] = "application/json"
    response.body = body.to_json
  end
end
