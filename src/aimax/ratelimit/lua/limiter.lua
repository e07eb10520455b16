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
--
-- Cost: the script's work adds to every acquire's round trip. The common attempt
-- (granted at once; nothing frozen or reserved; no pool whose head may have expired
-- or whose TTL is due) runs a fast path of four commands for two pools: TIME, one
-- HMGET of the control fields and one RPUSH per pool, making no closure, table or
-- string. Everything else (refusals, head reads, TTLs, peeks, the other operations)
-- runs the general code, which answers exactly as if the fast path had not run.

local PAGE = 8  -- list elements read at the head per LRANGE

local call = redis.call
local tonumber = tonumber
local op = ARGV[1] or ''
local fixed_now = nil
if op < 'a' then  -- upper case: the tests' fixed time
  fixed_now = tonumber(ARGV[#ARGV])
  op = string.lower(op)
end
local now = nil  -- the time and control fields the fast path read (the general
local ctl = nil  -- path below reuses them)

if op == 'a' then
  -- The fast path: the common attempt (nothing frozen or reserved, no pool whose head
  -- may have expired or whose TTL is due, room in every pool) in TIME, one HMGET and
  -- one RPUSH per pool, with no closure, table or string made here: the script's
  -- own work is a fixed cost of every acquire. Anything else is handed, unchanged,
  -- to the general path below (after undoing this path's pushes), which answers it.
  -- Lua turns the numeric strings of ARGV and of the replies into numbers in
  -- arithmetic, so `a - b > 0` compares without tonumber.
  local n = tonumber(ARGV[2])
  local m = tonumber(ARGV[3])
  if fixed_now then
    now = fixed_now
  else
    local t = redis.call('TIME')
    now = t[1] * 1000000 + t[2]
  end
  local fbase = 4 + 3 * n
  ctl = call('HMGET', KEYS[1], unpack(ARGV, fbase, fbase + m + 5 * n - 1))
  local plain = true
  for i = 1, m do
    local u = ctl[i]
    if u and u - now > 0 then plain = false end
  end
  local c = m  -- pool p's fields are ctl[c + 1 .. c + 5]: r, e, h, d, x
  for p = 1, n do
    local head_leaves = ctl[c + 3]
    local ttl_set = ctl[c + 5]
    if (ctl[c + 1] and ctl[c + 2] - now > 0)
      or not head_leaves or now - head_leaves >= 0
      or not ttl_set or now - ttl_set - ARGV[3 + 3 * p] >= 0 then
      plain = false
      break
    end
    c = c + 5
  end
  if plain then
    local pushed = 0
    c = m
    for p = 1, n do
      local o = 1 + 3 * p
      local cost = ARGV[o]
      local key = KEYS[p + 1]
      local len
      if cost == '1' then
        len = call('RPUSH', key, now)  -- (an integral number is sent as its digits)
      else
        local units = {}
        for q = 1, cost do units[q] = now end
        len = call('RPUSH', key, unpack(units))
      end
      pushed = p
      -- units now in the window = len - dead (expired head units); over the cap, or
      -- a log that was empty (its TTL must be set): the general path decides
      if len - (ctl[c + 4] or 0) - ARGV[o + 1] > 0 or len - cost == 0 then
        plain = false
        break
      end
      c = c + 5
    end
    if plain then return now end
    for p = 1, pushed do
      call('LTRIM', KEYS[p + 1], 0, -ARGV[1 + 3 * p] - 1)
    end
  end
end

local function now_us()
  if fixed_now then return fixed_now end
  local t = redis.call('TIME')
  return t[1] * 1000000 + t[2]  -- (Lua turns the two strings into numbers)
end

-- The expired units at the head of a pool's log (time <= horizon). Returns how many
-- remain in the list and the time of the first live unit (nil when none). A whole
-- page of expired units is walked past and, with trim, dropped.
local function expired_head(key, horizon, trim)
  local page = call('LRANGE', key, 0, PAGE - 1)
  local j = 1
  while j <= #page and tonumber(page[j]) <= horizon do j = j + 1 end
  if j <= #page then return j - 1, tonumber(page[j]) end
  if #page < PAGE then return #page, nil end
  local offset = PAGE
  local first = nil
  while true do
    page = call('LRANGE', key, offset, offset + 4 * PAGE - 1)
    j = 1
    while j <= #page and tonumber(page[j]) <= horizon do j = j + 1 end
    offset = offset + j - 1
    if j <= #page then first = tonumber(page[j]) end
    if j <= #page or #page < 4 * PAGE then break end
  end
  if not trim then return offset, first end
  call('LTRIM', key, offset, -1)
  return 0, first
end

-- Time (us) at which the unit at live position `k` (1 = oldest live unit) leaves the
-- window, or nil when there is no such unit.
local function unit_leaves(key, dead, k, win)
  local ts = call('LINDEX', key, dead + k - 1)
  if not ts then return nil end
  return tonumber(ts) + win
end

local function extend_ttl(key, ms)
  local pttl = call('PTTL', key)
  if pttl < 0 or ms > pttl then call('PEXPIRE', key, ms) end
end

if op == 'a' or op == 'p' then
  -- ARGV: op, n pools, m scopes, then per pool: cost, cap, window_us, then the m scope
  -- fields "f:<scope>", then per pool the fields r:, e:, h:, d:, x: + <pool> (see top).
  -- (An attempt comes here only when the fast path above did not answer it.)
  local n = tonumber(ARGV[2])
  local m = tonumber(ARGV[3])
  now = now or now_us()
  local fbase = 4 + 3 * n
  ctl = ctl or call('HMGET', KEYS[1], unpack(ARGV, fbase, fbase + m + 5 * n - 1))
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
  local charge = op == 'a'
  local stamp = nil  -- now as the text a log element holds
  local worst = -1
  local short = 0
  local pushed = 0
  local scans = nil  -- pool -> {expired units at the head, first live unit's time}
  local due = nil  -- pool -> window, for the pools whose TTL is due (if granted)
  for p = 1, n do
    local o = 1 + 3 * p
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
    local dead = ctl[c + 4]
    dead = dead and tonumber(dead) or 0
    local head_leaves = ctl[c + 3]
    if not head_leaves or now >= tonumber(head_leaves) then
      -- the head may have expired since it was last read: read it (else nothing has)
      local first
      dead, first = expired_head(key, now - win, charge)
      scans = scans or {}
      scans[p] = {dead, first}
    end
    local used
    if charge and short == 0 then
      -- optimistic: charge now (RPUSH answers the new length), undo if anything is short
      stamp = stamp or string.format('%d', now)
      local len
      if cost == 1 then
        len = call('RPUSH', key, stamp)
      else
        local units = {}
        for q = 1, cost do units[q] = stamp end
        len = call('RPUSH', key, unpack(units))
      end
      used = len - cost - dead
      local ttl_set = ctl[c + 5]
      if len == cost or not ttl_set or now >= tonumber(ttl_set) + win then
        due = due or {}
        due[p] = win
      end
      pushed = p
    else
      used = call('LLEN', key) - dead
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
  if not charge then
    if short > 0 then return {0, worst, short, 0} end
    return now
  end
  if short > 0 then
    for p = 1, pushed do
      call('LTRIM', KEYS[p + 1], 0, -tonumber(ARGV[1 + 3 * p]) - 1)
    end
    due = nil
  end
  if scans or due then
    -- remember per pool when its head next expires and how many expired units it
    -- holds (so the next attempts need not read it), and keep the keys alive: a pool
    -- key's TTL is set to two windows at most once a window
    local updates = {}
    local ctl_ttl = 0
    for p = 1, n do
      local f = fbase + m + 5 * (p - 1)
      local scan = scans and scans[p]
      if scan then
        local next_expiry = 0
        if scan[2] then
          next_expiry = scan[2] + tonumber(ARGV[3 + 3 * p])
        elseif short == 0 then
          next_expiry = now + tonumber(ARGV[3 + 3 * p])
        end
        updates[#updates + 1] = ARGV[f + 2]
        updates[#updates + 1] = string.format('%d', next_expiry)
        updates[#updates + 1] = ARGV[f + 3]
        updates[#updates + 1] = scan[1]
      end
      local win = due and due[p]
      if win then
        call('PEXPIRE', KEYS[p + 1], 2 * math.floor(win / 1000) + 2)
        updates[#updates + 1] = ARGV[f + 4]
        updates[#updates + 1] = stamp
        if 2 * win > ctl_ttl then ctl_ttl = 2 * win end
      end
    end
    if #updates > 0 then
      call('HSET', KEYS[1], unpack(updates))
      if ctl_ttl > 0 then extend_ttl(KEYS[1], math.floor(ctl_ttl / 1000) + 2) end
    end
  end
  if short > 0 then return {0, worst, short, 0} end
  return now
end

if op == 'f' then
  -- ARGV: op, field "f:<scope>", until_us
  local until_us = tonumber(ARGV[3])
  local cur = tonumber(call('HGET', KEYS[1], ARGV[2]) or '0')
  local now = now_us()
  if until_us <= cur or until_us <= now then return cur end
  call('HSET', KEYS[1], ARGV[2], ARGV[3])
  extend_ttl(KEYS[1], math.floor((until_us - now) / 1000) + 2)
  return until_us
end

if op == 'u' then
  -- ARGV: op, n pools, then per pool: window_us, then per pool the fields r:, e:
  local n = tonumber(ARGV[2])
  local now = now_us()
  local ctl = call('HMGET', KEYS[1], unpack(ARGV, 3 + n, 2 + 3 * n))
  local out = {}
  for p = 1, n do
    local key = KEYS[p + 1]
    local dead = expired_head(key, now - tonumber(ARGV[2 + p]), false)
    local used = call('LLEN', key) - dead
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
  local ctl = call('HMGET', KEYS[1], unpack(ARGV, fields, fields + 2 * n - 1))
  local longest = 0
  for p = 1, n do
    local win, reserve, at, k = specs[p][1], specs[p][2], specs[p][3], specs[p][4]
    local key = KEYS[p + 1]
    if k > 0 then
      local units = {}
      for _, ts in ipairs(call('LRANGE', key, 0, -1)) do
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
      call('DEL', key)
      local flat = {}
      for q = 1, #units do
        flat[#flat + 1] = string.format('%d', units[q])
        if #flat >= 1000 then
          call('RPUSH', key, unpack(flat))
          flat = {}
        end
      end
      if #flat > 0 then call('RPUSH', key, unpack(flat)) end
      if #units > 0 then call('PEXPIRE', key, 2 * math.floor(win / 1000) + 2) end
      -- the log changed under the attempts' bookkeeping: make the next one read it
      local pool = string.sub(ARGV[fields + 2 * (p - 1)], 3)
      call('HDEL', KEYS[1], 'h:' .. pool, 'd:' .. pool, 'x:' .. pool)
    end
    local rend = ctl[2 * p]
    local in_force = rend and tonumber(rend) > now
    if reserve > 0 and not in_force then
      local field = ARGV[fields + 2 * (p - 1)]
      local efield = ARGV[fields + 2 * (p - 1) + 1]
      call('HSET', KEYS[1], field, reserve, efield, string.format('%d', now + hold + win))
      if hold + win > longest then longest = hold + win end
    end
  end
  if longest > 0 then extend_ttl(KEYS[1], math.floor(longest / 1000) + 2) end
  return now
end

return redis.error_reply('aimax limiter script: unknown operation ' .. tostring(ARGV[1]))
