import Support

/// The Lua scripts that change the cluster's shared state. Redis runs each one atomically, so
/// "first connection anywhere" and "last one anywhere" are decided once for the whole cluster,
/// whichever nodes race.
///
/// One hash per channel (`SharedStateKeys.channel`):
///
///     t                total subscriptions, all nodes      n:<node>         one node's subscriptions
///     uc               presence users, all nodes           u:<user>         one user's connections, all nodes
///     i:<user>         the user's user_info (JSON text)    m:<node>:<user>  one user's connections on one node
///     pv, pr:<user>    a departure in its grace window: "<node that holds its webhook>|<deadline ms>"
///     v                the version of the member list (see `bump`)
///
/// A node writes only its own `n:` and `m:` fields, always as absolute values ("this node has 3"),
/// so writing the same share twice changes nothing and a resynchronisation is just writing them
/// all again. Node ids are 16 characters, so `m:<node>:<user>` splits without a delimiter.
///
/// Every script reports a change per channel as `{key, total, users, channelEvent, {user, event, info, …}, members, version}`
/// where an event is "" (none), "+" (arrived), "~<node>" (arrived again within the grace window of
/// a departure whose webhook `<node>` holds) or "-" (departed).
enum SharedStateScripts {
    /// Functions every script starts with. `KEYS`/`ARGV` stay with the scripts themselves.
    private static let prelude = #"""
    local now, now_us
    do
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end

    -- Every member transition gets a new version, larger than any before it (even after the hash
    -- expired or Redis restarted: it starts from the clock), so a subscriber whose member list
    -- already has a change can skip its event.
    local function bump(key)
      local version = math.max(now_us, tonumber(redis.call('HGET', key, 'v') or '0') + 1)
      redis.call('HSET', key, 'v', string.format('%.0f', version))
    end

    -- An arrival: was a departure still in its grace window? Then "~<its node>", else "+".
    -- A holder that has left (no lease: it stopped, and sent its departures as it did) cancels nothing.
    local lease_prefix
    local function arrival(key, field)
      local held = redis.call('HGET', key, field)
      if not held then return '+' end
      redis.call('HDEL', key, field)
      local bar = string.find(held, '|', 1, true)
      local holder = string.sub(held, 1, bar - 1)
      if tonumber(string.sub(held, bar + 1)) <= now then return '+' end
      if lease_prefix and redis.call('EXISTS', lease_prefix .. holder) == 0 then return '+' end
      return '~' .. holder
    end

    -- A departure whose webhook node `holder` holds back for `grace` ms.
    local function departure(key, field, holder, grace)
      redis.call('HSET', key, field, holder .. '|' .. (now + grace))
      return '-'
    end

    -- Sets `node`'s subscriptions to `count`; returns the channel's event. A departure's webhook
    -- is held by `holder` (the node that announces it), `node` itself when nil.
    local function set_subscriptions(key, chans, name, node, count, grace, holder)
      local field = 'n:' .. node
      local old = tonumber(redis.call('HGET', key, field) or '0')
      if count == old then return '' end
      local total = redis.call('HINCRBY', key, 't', count - old)
      if count > 0 then redis.call('HSET', key, field, count) else redis.call('HDEL', key, field) end
      local before = total - (count - old)
      if before <= 0 and total > 0 then
        redis.call('SADD', chans, name)
        redis.call('PERSIST', key)
        return arrival(key, 'pv')
      elseif before > 0 and total <= 0 then
        redis.call('SREM', chans, name)
        -- Nothing left but grace records: let the hash go once they are of no use.
        redis.call('PEXPIRE', key, grace + 60000)
        return departure(key, 'pv', holder or node, grace)
      end
      return ''
    end

    -- Sets `node`'s connections of presence user `user` to `count`; returns the user's event
    -- (`holder` as for `set_subscriptions`).
    local function set_member(key, node, user, count, info, grace, holder)
      local field = 'm:' .. node .. ':' .. user
      local old = tonumber(redis.call('HGET', key, field) or '0')
      if count == old then return '' end
      local total = redis.call('HINCRBY', key, 'u:' .. user, count - old)
      if count > 0 then redis.call('HSET', key, field, count) else redis.call('HDEL', key, field) end
      local before = total - (count - old)
      if before <= 0 and total > 0 then
        redis.call('HSET', key, 'i:' .. user, info)
        redis.call('HINCRBY', key, 'uc', 1)
        bump(key)
        return arrival(key, 'pr:' .. user)
      elseif before > 0 and total <= 0 then
        redis.call('HDEL', key, 'u:' .. user, 'i:' .. user)
        redis.call('HINCRBY', key, 'uc', -1)
        bump(key)
        return departure(key, 'pr:' .. user, holder or node, grace)
      end
      return ''
    end

    -- The presence members as {id, info, id, info, …}.
    local function members(key)
      local all = redis.call('HGETALL', key)
      local out = {}
      for i = 1, #all, 2 do
        if string.sub(all[i], 1, 2) == 'i:' then
          out[#out + 1] = string.sub(all[i], 3)
          out[#out + 1] = all[i + 1]
        end
      end
      return out
    end

    -- Member events leave from here, in the order Redis runs the scripts, so that every node (the
    -- one whose change it was, too) hears them in the order of their versions. The payload is a
    -- `ClusterMessage.memberChange` (see ClusterMessage.swift), from a sender no node is.
    local events_channel, excluded_socket, quiet_arrivals
    local function le32(n)
      return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256, math.floor(n / 16777216) % 256)
    end
    local function field(text)
      if text == nil then return '\255\255\255\255' end
      return le32(#text) .. text
    end
    local function publish_member_events(app, name, user_events, version)
      for i = 1, #user_events, 3 do
        local user, event, info = user_events[i], user_events[i + 1], user_events[i + 2]
        local added = event ~= '-'
        if event ~= '' and not (added and quiet_arrivals) then
          local payload = '################' .. '\5' .. field(app) .. field(name) .. field(user) .. field(added and '1' or '0')
            .. field(added and info or nil) .. field(added and excluded_socket or nil) .. field(string.format('%.0f', version))
          redis.call('PUBLISH', events_channel, payload)
        end
      end
    end

    local function report(key, app, name, channel_event, user_events, with_members)
      local total = tonumber(redis.call('HGET', key, 't') or '0')
      local users = tonumber(redis.call('HGET', key, 'uc') or '0')
      local version = tonumber(redis.call('HGET', key, 'v') or '0')
      publish_member_events(app, name, user_events, version)
      return {key, total, users, channel_event, user_events, with_members and members(key) or {}, version}
    end

    -- Takes every share `node` holds in `key` away (the node died, or no longer has the channel);
    -- node `holder` announces the departures, so it holds their webhooks.
    local function drop(key, app, chans, name, node, grace, holder)
      local user_events = {}
      local prefix = 'm:' .. node .. ':'
      local all = redis.call('HGETALL', key)
      for i = 1, #all, 2 do
        if string.sub(all[i], 1, #prefix) == prefix then
          local user = string.sub(all[i], #prefix + 1)
          local event = set_member(key, node, user, 0, '', grace, holder)
          if event ~= '' then
            user_events[#user_events + 1] = user
            user_events[#user_events + 1] = event
            user_events[#user_events + 1] = ''
          end
        end
      end
      return report(key, app, name, set_subscriptions(key, chans, name, node, 0, grace, holder), user_events, false)
    end
    """#

    /// One channel after a subscribe or unsubscribe on this node. With "want last event", the
    /// answer also carries the cache channel's last event, or says whether this subscribe is the
    /// first to find it empty (field `cm` of the channel hash, cleared by `keepLast`).
    /// KEYS: channel hash, the app's channel set, this node's key index, the channel's last event.
    /// ARGV: node, channel name, grace ms, subscriptions here, want members (0/1), want last event
    /// (0/1), the lease key prefix, the presence member cap (0: none), app id, the events channel,
    /// the joining socket (left out of its own member_added; "" for none), then optionally user,
    /// connections here, info.
    /// Returns the change, then {envelope, data, ttl ms, missed (0/1)} of the last event ("" and -2
    /// when none); or "full", writing nothing, when a new user would pass the member cap.
    static let record = RedisScript(prelude + "\n" + #"""
    local key, chans, index, last = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
    local node, name, grace, count = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
    lease_prefix = ARGV[7]
    local cap, app = tonumber(ARGV[8]), ARGV[9]
    events_channel = ARGV[10]
    if ARGV[11] ~= '' then excluded_socket = ARGV[11] end
    local user, connections, info = ARGV[12], tonumber(ARGV[13]), ARGV[14]
    if user and cap > 0 and connections > 0 and tonumber(redis.call('HGET', key, 'u:' .. user) or '0') <= 0
        and tonumber(redis.call('HGET', key, 'uc') or '0') >= cap then
      return 'full'
    end
    local user_events = {}
    if user then
      local event = set_member(key, node, user, connections, info, grace)
      if event ~= '' then user_events = {user, event, info} end
    end
    local channel_event = set_subscriptions(key, chans, name, node, count, grace)
    if count > 0 then redis.call('SADD', index, key) else redis.call('SREM', index, key) end
    local change = report(key, app, name, channel_event, user_events, ARGV[5] == '1')
    local envelope, data, ttl, missed = '', '', -2, 0
    if ARGV[6] == '1' then
      local event = redis.call('HMGET', last, 'e', 'd')
      local left = event[1] and redis.call('PTTL', last) or -2
      -- An event in its last millisecond (PTTL 0) counts as gone, as it does for the reader.
      if left > 0 then
        envelope, data, ttl = event[1], event[2], left
      elseif redis.call('HSETNX', key, 'cm', '1') == 1 then
        missed = 1
      end
    end
    change[8], change[9], change[10], change[11] = envelope, data, ttl, missed
    return change
    """#)

    /// A cache channel's last event, kept for its TTL. KEYS: the last event, the channel hash.
    /// ARGV: envelope, data, ttl ms.
    static let keepLast = RedisScript(#"""
    redis.call('HSET', KEYS[1], 'e', ARGV[1], 'd', ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    redis.call('HDEL', KEYS[2], 'cm')
    return 1
    """#)

    /// One channel for the HTTP API: {subscriptions, users, envelope, data, ttl ms} ("" and -2 without a last event).
    /// KEYS: the channel hash, the channel's last event.
    static let channelInfo = RedisScript(#"""
    local counts = redis.call('HMGET', KEYS[1], 't', 'uc')
    local event = redis.call('HMGET', KEYS[2], 'e', 'd')
    local ttl = event[1] and redis.call('PTTL', KEYS[2]) or -2
    return {tonumber(counts[1] or '0'), tonumber(counts[2] or '0'), event[1] or '', event[2] or '', ttl}
    """#)

    /// This node's whole share of one channel, written again (after shared state was lost or the
    /// node was swept): its subscriptions and every member it has there; members it no longer has are dropped.
    /// KEYS: channel hash, the app's channel set, this node's key index. ARGV: node, channel name,
    /// grace ms, subscriptions here, the lease key prefix, app id, the events channel, quiet
    /// arrivals (1: after Redis lost its data, arrivals were announced before), then user,
    /// connections, info per member.
    static let restore = RedisScript(prelude + "\n" + #"""
    local key, chans, index = KEYS[1], KEYS[2], KEYS[3]
    local node, name, grace, count = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
    lease_prefix = ARGV[5]
    local app = ARGV[6]
    events_channel, quiet_arrivals = ARGV[7], ARGV[8] == '1'
    local listed, user_events = {}, {}
    for i = 9, #ARGV, 3 do
      listed[ARGV[i]] = true
      local event = set_member(key, node, ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], grace)
      if event ~= '' then
        user_events[#user_events + 1] = ARGV[i]; user_events[#user_events + 1] = event; user_events[#user_events + 1] = ARGV[i + 2]
      end
    end
    local prefix = 'm:' .. node .. ':'
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
      local user = string.sub(all[i], #prefix + 1)
      if string.sub(all[i], 1, #prefix) == prefix and not listed[user] then
        local event = set_member(key, node, user, 0, '', grace)
        if event ~= '' then
          user_events[#user_events + 1] = user; user_events[#user_events + 1] = event; user_events[#user_events + 1] = ''
        end
      end
    end
    local channel_event = set_subscriptions(key, chans, name, node, count, grace)
    if count > 0 then redis.call('SADD', index, key) else redis.call('SREM', index, key) end
    return report(key, app, name, channel_event, user_events, false)
    """#)

    /// Drops `node`'s share of every channel in its index but the ones listed (all of them for a
    /// dead node). With `forget` = 1 the node itself is forgotten, once: a second sweeper finds nothing.
    /// KEYS: the node index, the node set, the node's connection counts.
    /// ARGV: node, grace ms, forget (0/1), key prefix of channel hashes, key prefix of channel sets,
    /// the only app to look at ("" for all), the node that announces the departures (and so holds
    /// their webhooks in the grace window: the sweeper, not the dead node), the events channel,
    /// then the channel keys to keep.
    static let drop = RedisScript(prelude + "\n" + #"""
    local index, nodes, conns = KEYS[1], KEYS[2], KEYS[3]
    local node, grace, forget = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
    local channel_prefix, set_prefix, only_app, holder = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
    events_channel = ARGV[8]
    if forget and redis.call('SREM', nodes, node) == 0 then return {} end
    local keep = {}
    for i = 9, #ARGV do keep[ARGV[i]] = true end
    local changes = {}
    for _, key in ipairs(redis.call('SMEMBERS', index)) do
      -- "<prefix>ch:<app>:<channel>": the channel name has no colon, so it is what follows the last one.
      local name = string.match(key, ':([^:]*)$')
      local app = string.sub(key, #channel_prefix + 1, #key - #name - 1)
      if not keep[key] and (only_app == '' or app == only_app) then
        local chans = set_prefix .. app
        changes[#changes + 1] = drop(key, app, chans, name, node, grace, holder)
        redis.call('SREM', index, key)
      end
    end
    if forget then redis.call('DEL', index, conns) end
    return changes
    """#)

    /// The heartbeat: renews this node's lease (re-creating it, and reporting "lost", when it had
    /// expired or Redis lost its data), publishes this node's connections per app, and lists the
    /// nodes whose lease is gone. KEYS: the node set, this node's lease, this node's connection counts, the epoch.
    /// ARGV: node, lease ms, lease key prefix, connection key prefix, fresh epoch, then app, count pairs.
    /// Returns {renewed (1) or lost (0), epoch, {dead nodes}, {app, connections on the other nodes, …}}.
    static let heartbeat = RedisScript(#"""
    local nodes, lease, conns, epoch_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
    local node, lease_ms, lease_prefix, conns_prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
    redis.call('SET', epoch_key, ARGV[5], 'NX')
    local epoch = redis.call('GET', epoch_key)
    local renewed = redis.call('SET', lease, '1', 'PX', lease_ms, 'XX') and 1 or 0
    if renewed == 0 then redis.call('SET', lease, '1', 'PX', lease_ms) end
    redis.call('SADD', nodes, node)
    redis.call('DEL', conns)
    for i = 6, #ARGV, 2 do redis.call('HSET', conns, ARGV[i], ARGV[i + 1]) end
    redis.call('PEXPIRE', conns, lease_ms)
    local dead, others = {}, {}
    for _, other in ipairs(redis.call('SMEMBERS', nodes)) do
      if other ~= node then
        if redis.call('EXISTS', lease_prefix .. other) == 0 then
          dead[#dead + 1] = other
        else
          local counts = redis.call('HGETALL', conns_prefix .. other)
          for i = 1, #counts, 2 do others[counts[i]] = (others[counts[i]] or 0) + tonumber(counts[i + 1]) end
        end
      end
    end
    local flat = {}
    for app, count in pairs(others) do flat[#flat + 1] = app; flat[#flat + 1] = count end
    return {renewed, epoch, dead, flat}
    """#)

    /// The occupied channels of an app with their counts: {name, subscriptions, users, …}.
    /// KEYS: the app's channel set. ARGV: the channel hash prefix of the app.
    static let occupied = RedisScript(#"""
    local out = {}
    for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
      local values = redis.call('HMGET', ARGV[1] .. name, 't', 'uc')
      local total = tonumber(values[1] or '0')
      if total > 0 then
        out[#out + 1] = name; out[#out + 1] = total; out[#out + 1] = tonumber(values[2] or '0')
      end
    end
    return out
    """#)

    static let all = [record, restore, drop, heartbeat, occupied, keepLast, channelInfo]
}

/// A Lua script and its SHA-1, for EVALSHA: each call sends 40 bytes instead of the script.
struct RedisScript: Sendable {
    let source: String
    let sha: String

    init(_ source: String) {
        self.source = source
        sha = Digest.hex(Digest.sha1(Array(source.utf8)))
    }
}
