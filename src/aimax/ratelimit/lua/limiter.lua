-- aimax rate limiter: exact weighted sliding windows over linked pools, in Redis.
--
-- One script, loaded once and run with EVALSHA; ARGV[1] selects the operation:
--   "a"  attempt: check every linked pool and frozen scope, charge all or nothing
--   "p"  peek: the same check, charging nothing
--   "f"  freeze a scope until a Unix time (never shortens)
--   "u"  usage: units now inside each pool's window (read only)
--   "r"  rejoin after a local fallback: replay the local grants, reserve the others'
--
-- The same letters in upper case ("A", "P", "F", "U", "R") take the time (us) from
-- the last ARGV instead of TIME: only the tests use them, to compare the script with
-- the pure core under a fake clock.
--
-- Time comes from the server (TIME), in integer microseconds, so client clocks do not
-- matter. Keys (all under one {prefix} hash tag, so a cluster keeps them together):
--   KEYS[1]    the control hash: "f:<scope>" -> frozen until (us),
--              "r:<pool>" -> reserved units, "e:<pool>" -> reservation end (us),
--              "h:<pool>" -> when the pool's oldest live unit leaves (us): until
--              then its head need not be read, "d:<pool>" -> expired units still at
--              its head, "x:<pool>" -> when its key's TTL was last set (us)
--   KEYS[1+i]  pool i's log: a list with one element per unit granted, holding the
--              grant time (us), oldest first. A unit counts while granted_at + window
--              > now (half-open window). Expired units at the head are trimmed lazily
--              (once a page of them has built up), so the units in the window are
--              the list length minus the expired head. The key's TTL is set to two
--              windows at most once a window, so it expires within two windows of its
--              last grant.
-- Replies are integers (microseconds) so no float is lost on the way. A granted
-- attempt answers the grant time alone (the cheapest reply to parse); a refused one
-- {0, wait, index of the short pool (0: frozen), frozen until (0: not frozen)}, and
-- {-1, 0, index, 0} when a pool could never hold the request.

local PAGE = 8  -- list elements read at the head per LRANGE

local op = ARGV[1]
local fixed_now = nil
if op == 'A' or op == 'P' or op == 'F' or op == 'U' or op == 'R' then
  fixed_now = tonumber(ARGV[#ARGV])
  op = string.lower(op)
end

local function now_us()
  if fixed_now then return fixed_now end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- The expired units at the head of a pool's log (time <= horizon). Returns how many
-- remain in the list and the time of the first live unit (nil when none). A whole
-- page of expired units is walked past and, with trim, dropped.
local function expired_head(key, horizon, trim)
  local page = redis.call('LRANGE', key, 0, PAGE - 1)
  local j = 1
  while j <= #page and tonumber(page[j]) <= horizon do j = j + 1 end
  if j <= #page then return j - 1, tonumber(page[j]) end
  if #page < PAGE then return #page, nil end
  local offset = PAGE
  local first = nil
  while true do
    page = redis.call('LRANGE', key, offset, offset + 4 * PAGE - 1)
    j = 1
    while j <= #page and tonumber(page[j]) <= horizon do j = j + 1 end
    offset = offset + j - 1
    if j <= #page then first = tonumber(page[j]) end
    if j <= #page or #page < 4 * PAGE then break end
  end
  if not trim then return offset, first end
  redis.call('LTRIM', key, offset, -1)
  return 0, first
end

-- Time (us) at which the unit at live position `k` (1 = oldest live unit) leaves the
-- window, or nil when there is no such unit.
local function unit_leaves(key, dead, k, win)
  local ts = redis.call('LINDEX', key, dead + k - 1)
  if not ts then return nil end
  return tonumber(ts) + win
end

local function stamps(ts, count)
  local out = {}
  local text = string.format('%d', ts)
  for q = 1, count do out[q] = text end
  return out
end

local function extend_ttl(key, ms)
  local pttl = redis.call('PTTL', key)
  if pttl < 0 or ms > pttl then redis.call('PEXPIRE', key, ms) end
end

if op == 'a' or op == 'p' then
  -- ARGV: op, n pools, m scopes, then per pool: cost, cap, window_us, then the m scope
  -- fields "f:<scope>", then per pool the fields r:, e:, h:, d:, x: + <pool> (see top).
  local n = tonumber(ARGV[2])
  local m = tonumber(ARGV[3])
  local now = now_us()
  local fbase = 4 + 3 * n
  local ctl = redis.call('HMGET', KEYS[1], unpack(ARGV, fbase, fbase + m + 5 * n - 1))
  -- (the client never sends an attempt without pools or scopes)
  local frozen = 0
  for i = 1, m do
    local u = ctl[i]
    if u then
      u = tonumber(u)
      if u > now and u > frozen then frozen = u end
    end
  end
  if frozen > 0 then return {0, frozen - now, 0, frozen} end
  local worst = -1
  local short = 0
  local pushed = 0
  local scans = {}
  local fresh = {}
  for p = 1, n do
    local o = 4 + 3 * (p - 1)
    local cost = tonumber(ARGV[o])
    local cap = tonumber(ARGV[o + 1])
    local win = tonumber(ARGV[o + 2])
    local key = KEYS[p + 1]
    local c = m + 5 * (p - 1)
    local reserved = 0
    local reserve_end = 0
    if ctl[c + 1] then
      reserve_end = tonumber(ctl[c + 2])
      if reserve_end > now then reserved = tonumber(ctl[c + 1]) end
    end
    local dead = tonumber(ctl[c + 4] or '0')
    if now >= tonumber(ctl[c + 3] or '0') then
      -- the head may have expired since it was last read: read it (else nothing has)
      local first
      dead, first = expired_head(key, now - win, op == 'a')
      scans[p] = {dead, first}
    end
    local used
    if op == 'a' and short == 0 then
      -- optimistic: charge now (RPUSH answers the new length), undo if anything is short
      local len = redis.call('RPUSH', key, unpack(stamps(now, cost)))
      used = len - cost - dead
      fresh[p] = len == cost
      pushed = p
    else
      used = redis.call('LLEN', key) - dead
    end
    local excess = used + reserved + cost - cap
    if excess > 0 then
      -- the excess-th oldest live unit must leave; or the reservation, then fewer units
      -- (only units counted in `used`: not the ones this attempt just pushed)
      local at = nil
      if excess <= used then at = unit_leaves(key, dead, excess, win) end
      if reserved > 0 then
        local rest = excess - reserved
        local with = reserve_end
        if rest > used then
          with = nil
        elseif rest > 0 then
          with = math.max(unit_leaves(key, dead, rest, win), reserve_end)
        end
        if with and (not at or with < at) then at = with end
      end
      if not at then return {-1, 0, p, 0} end
      local wait = at - now
      if wait < 1 then wait = 1 end
      if wait > worst then
        worst = wait
        short = p
      end
    end
  end
  if op == 'p' then
    if short > 0 then return {0, worst, short, 0} end
    return now
  end
  if short > 0 then
    for p = 1, pushed do
      redis.call('LTRIM', KEYS[p + 1], 0, -tonumber(ARGV[4 + 3 * (p - 1)]) - 1)
    end
  end
  -- remember per pool when its head next expires and how many expired units it
  -- holds (so the next attempts need not read it), and keep the keys alive: a pool
  -- key's TTL is set to two windows at most once a window
  local updates = {}
  local ctl_ttl = 0
  for p = 1, n do
    local win = tonumber(ARGV[4 + 3 * (p - 1) + 2])
    local f = fbase + m + 5 * (p - 1)
    local scan = scans[p]
    if scan then
      local next_expiry = 0
      if scan[2] then
        next_expiry = scan[2] + win
      elseif short == 0 then
        next_expiry = now + win
      end
      updates[#updates + 1] = ARGV[f + 2]
      updates[#updates + 1] = string.format('%d', next_expiry)
      updates[#updates + 1] = ARGV[f + 3]
      updates[#updates + 1] = scan[1]
    end
    if short == 0 and (fresh[p] or now >= tonumber(ctl[m + 5 * (p - 1) + 5] or '0') + win) then
      redis.call('PEXPIRE', KEYS[p + 1], 2 * math.floor(win / 1000) + 2)
      updates[#updates + 1] = ARGV[f + 4]
      updates[#updates + 1] = string.format('%d', now)
      if 2 * win > ctl_ttl then ctl_ttl = 2 * win end
    end
  end
  if #updates > 0 then
    redis.call('HSET', KEYS[1], unpack(updates))
    if ctl_ttl > 0 then extend_ttl(KEYS[1], math.floor(ctl_ttl / 1000) + 2) end
  end
  if short > 0 then return {0, worst, short, 0} end
  return now
end

if op == 'f' then
  -- ARGV: op, field "f:<scope>", until_us
  local until_us = tonumber(ARGV[3])
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
  local now = now_us()
  if until_us <= cur or until_us <= now then return cur end
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  extend_ttl(KEYS[1], math.floor((until_us - now) / 1000) + 2)
  return until_us
end

if op == 'u' then
  -- ARGV: op, n pools, then per pool: window_us, then per pool the fields r:, e:
  local n = tonumber(ARGV[2])
  local now = now_us()
  local ctl = redis.call('HMGET', KEYS[1], unpack(ARGV, 3 + n, 2 + 3 * n))
  local out = {}
  for p = 1, n do
    local key = KEYS[p + 1]
    local dead = expired_head(key, now - tonumber(ARGV[2 + p]), false)
    local used = redis.call('LLEN', key) - dead
    local rc = ctl[2 * p - 1]
    if rc and tonumber(ctl[2 * p]) > now then used = used + tonumber(rc) end
    out[p] = used
  end
  out[n + 1] = now
  return out
end

if op == 'r' then
  -- ARGV: op, n pools, hold_us, then per pool: window_us, reserve units, k entries,
  -- then the k entries as (age_us, cost) pairs; then per pool the fields r:, e:.
  -- The local grants are merged into the log at now - age; the others' share is
  -- reserved until now + hold + window unless a reservation is already in force.
  local n = tonumber(ARGV[2])
  local hold = tonumber(ARGV[3])
  local now = now_us()
  local i = 4
  local specs = {}
  for p = 1, n do
    local win = tonumber(ARGV[i])
    local reserve = tonumber(ARGV[i + 1])
    local k = tonumber(ARGV[i + 2])
    specs[p] = {win, reserve, i + 3, k}
    i = i + 3 + 2 * k
  end
  local fields = i
  local ctl = redis.call('HMGET', KEYS[1], unpack(ARGV, fields, fields + 2 * n - 1))
  local longest = 0
  for p = 1, n do
    local win, reserve, at, k = specs[p][1], specs[p][2], specs[p][3], specs[p][4]
    local key = KEYS[p + 1]
    if k > 0 then
      local units = {}
      for _, ts in ipairs(redis.call('LRANGE', key, 0, -1)) do
        ts = tonumber(ts)
        if ts + win > now then units[#units + 1] = ts end
      end
      for q = 0, k - 1 do
        local ts = now - tonumber(ARGV[at + 2 * q])
        if ts + win > now then
          for _ = 1, tonumber(ARGV[at + 2 * q + 1]) do units[#units + 1] = ts end
        end
      end
      table.sort(units)
      redis.call('DEL', key)
      local flat = {}
      for q = 1, #units do
        flat[#flat + 1] = string.format('%d', units[q])
        if #flat >= 1000 then
          redis.call('RPUSH', key, unpack(flat))
          flat = {}
        end
      end
      if #flat > 0 then redis.call('RPUSH', key, unpack(flat)) end
      if #units > 0 then redis.call('PEXPIRE', key, 2 * math.floor(win / 1000) + 2) end
      -- the log changed under the attempts' bookkeeping: make the next one read it
      local pool = string.sub(ARGV[fields + 2 * (p - 1)], 3)
      redis.call('HDEL', KEYS[1], 'h:' .. pool, 'd:' .. pool, 'x:' .. pool)
    end
    local rend = ctl[2 * p]
    local in_force = rend and tonumber(rend) > now
    if reserve > 0 and not in_force then
      local field = ARGV[fields + 2 * (p - 1)]
      local efield = ARGV[fields + 2 * (p - 1) + 1]
      redis.call('HSET', KEYS[1], field, reserve, efield, string.format('%d', now + hold + win))
      if hold + win > longest then longest = hold + win end
    end
  end
  if longest > 0 then extend_ttl(KEYS[1], math.floor(longest / 1000) + 2) end
  return now
end

return redis.error_reply('aimax limiter script: unknown operation ' .. tostring(op))
