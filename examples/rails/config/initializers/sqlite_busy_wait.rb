# SQLite lets one connection write at a time, and Puma (with the :async jobs) runs several
# threads. The sqlite3 1.4 gem of Debian 12 waits for a lock inside C while holding Ruby's global
# lock, so the thread that owns the write lock cannot run on to its commit: each waiter stalls for
# database.yml's whole `timeout`, then fails with "database is locked". This waits in Ruby instead
# (sleep lets the owner finish), within the same timeout. Rails 7.1's `retries:` does the same.
module SQLiteBusyWait
  PAUSE_MS = 5

  private

  def configure_connection
    super
    timeout_ms = self.class.type_cast_config_to_integer(@config[:timeout]) || 5_000
    @connection.busy_handler { |tries| tries * PAUSE_MS < timeout_ms && sleep(PAUSE_MS / 1000.0) }
  end
end

ActiveSupport.on_load(:active_record) do
  require "active_record/connection_adapters/sqlite3_adapter"
  ActiveRecord::ConnectionAdapters::SQLite3Adapter.prepend(SQLiteBusyWait)
end
