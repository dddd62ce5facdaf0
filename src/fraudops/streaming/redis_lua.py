"""The Lua script of :class:`fraudops.streaming.redis_state.RedisOnlineState` (one atomic call).

ARGV[1]: the plan (JSON, :meth:`RedisOnlineState._plan_json`); ARGV[2]: the mode; ARGV[3]: the
payload (JSON). Modes:

- ``score``: ARGV[3] is a list of events ``[id, second, fingerprint, [entity keys], [packed
  values per entity]]``. Checks every event against the clock and id rules first (returns
  ``{index, reason, watermark or -1, held fingerprint?}`` at the first refusal, nothing
  written), then per event in order: a new id is inserted and its windows read, a held id (a
  retry) has its windows read at its place. Returns ``{0, '', watermark, values...}``.
- ``load``: the same events plus a label, trusted (no check), ids already held skipped,
  nothing read. Returns ``{0, '', watermark, inserted}``.
- ``labels``: ARGV[3] is ``[[id, label], ...]``, trusted; returns ``{held}``.
- ``rule-labels``: ARGV[3] is ``[[id, label, external 0/1, correction 0/1], ...]``: every
  label checked by the rules of :mod:`fraudops.streaming.labels` first (returns ``{-1, index,
  reason}`` at the first refusal, nothing written), then the held ids' labels recorded;
  returns ``{held, external}``. ``check-labels``: the same check, nothing written.

Keys, under the prefix ``P``: ``P:clock`` (hash: ``watermark``, ``moved_at``), ``P:seq``
(arrival counter), ``P:ids`` (hash: id → fingerprint), ``P:loc`` (hash: id → JSON ``[second,
member, [entity keys]]``), ``P:seen`` (zset: id by second, to trim the hashes), ``P:fraud``
(hash: id → 1 while its label is fraud). Per entity key ``E = P:e:<entity>:<key>``: ``E:z``
(zset: member by second; a member is the zero-padded arrival number then the id, so same-second
events sort by arrival), ``E:v`` (hash: member → packed values), ``E:l`` (hash: member → 1 for a
fraud label), ``E:t`` (hash of tile aggregates: ``<level>:<tile>:n``, ``:s<i>`` exact integer
micro-unit sums, ``:m<i>`` max as written, ``:f`` fraud labels), ``E:T`` (zset: tile by its last
second, to trim tiles) and ``E:d<i>:<level>:<tile>`` (set of the distinct-count column ``i``'s
values in a tile).

A window ``(a, b]`` is covered by the coarsest whole tiles inside it, then finer ones, and the
events of the uncovered edges (less than one finest tile on each side) are read one by one;
with lag 0 the event's own second is always read event by event, keeping the events that
arrived up to the event itself. Tiles are deleted only when wholly expired, so a partly
expired tile is only ever an edge.

Numbers: seconds and counts are exact Lua doubles; sums are exact while a window's total
stays below 2^53 micro-units (about 9.0e9 in the column's unit).
"""

SCRIPT = r"""
local cfg = cjson.decode(ARGV[1])
local mode = ARGV[2]
local P = cfg.p
local levels = cfg.levels
local SEP = '\31'

local function split(s)
  local out, i = {}, 1
  while true do
    local j = string.find(s, SEP, i, true)
    if not j then out[#out + 1] = string.sub(s, i); return out end
    out[#out + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end

local function ekey(e, key) return P .. ':e:' .. e.n .. ':' .. key end

local function touch(e, E)
  for _, suffix in ipairs({':z', ':v', ':l', ':t'}) do redis.call('EXPIRE', E .. suffix, e.ttl) end
  for li = 1, #levels do redis.call('EXPIRE', E .. ':T' .. li, e.ttl) end
end

-- a tile's aggregates: {n, frauds, sums..., max texts...}, packed as n SEP f SEP s1 ... SEP m1 ...
local function tile_get(E, f, e)
  local text = redis.call('HGET', E .. ':t', f)
  if not text then
    local agg = {0, 0}
    for i = 1, e.ns do agg[2 + i] = 0 end
    for i = 1, e.nm do agg[2 + e.ns + i] = '' end
    return agg
  end
  local agg = split(text)
  for i = 1, 2 + e.ns do agg[i] = tonumber(agg[i]) end
  return agg
end

local function tile_put(E, f, e, agg)
  local parts = {string.format('%.0f', agg[1]), string.format('%.0f', agg[2])}
  for i = 1, e.ns do parts[2 + i] = string.format('%.0f', agg[2 + i]) end
  for i = 1, e.nm do parts[2 + e.ns + i] = agg[2 + e.ns + i] end
  redis.call('HSET', E .. ':t', f, table.concat(parts, SEP))
end

local function insert(e, E, member, s, packed)
  redis.call('ZADD', E .. ':z', s, member)
  redis.call('HSET', E .. ':v', member, packed)
  local vals = split(packed)
  for li, L in ipairs(levels) do
    local tile = math.floor(s / L)
    local f = li .. ':' .. tile
    local agg = tile_get(E, f, e)
    if agg[1] == 0 then redis.call('ZADD', E .. ':T' .. li, tile, tile) end
    agg[1] = agg[1] + 1
    for i = 1, e.ns do agg[2 + i] = agg[2 + i] + tonumber(vals[i]) end
    for i = 1, e.nm do
      local v, old = vals[e.ns + i], agg[2 + e.ns + i]
      if old == '' or tonumber(v) > tonumber(old) then agg[2 + e.ns + i] = v end
    end
    tile_put(E, f, e, agg)
    for i = 1, e.nd do
      local set = E .. ':d' .. i .. ':' .. f
      redis.call('SADD', set, vals[e.ns + e.nm + i])
      redis.call('EXPIRE', set, e.ttl)
    end
  end
end

local function set_label(e, E, member, label)
  local s = redis.call('ZSCORE', E .. ':z', member)
  if not s then return end
  local old = redis.call('HGET', E .. ':l', member) and 1 or 0
  if old == label then return end
  if label == 1 then
    redis.call('HSET', E .. ':l', member, 1)
    redis.call('EXPIRE', E .. ':l', e.ttl)
  else
    redis.call('HDEL', E .. ':l', member)
  end
  for li, L in ipairs(levels) do
    local f = li .. ':' .. math.floor(tonumber(s) / L)
    local agg = tile_get(E, f, e)
    agg[2] = agg[2] + label - old
    tile_put(E, f, e, agg)
  end
end

-- the windows of one lag of entity e at key E, widths ascending, into out: per width
-- {n, sums..., maxes..., frauds?, distinct...}; each wider window extends the previous one
local function windows(e, E, own, s, lag, widths, dcols, out)
  local b = s - lag
  local acc = {n = 0, s = {}, m = {}, ms = {}, f = 0, d = {}}
  for i = 1, e.ns do acc.s[i] = 0 end
  for _, i in ipairs(dcols) do acc.d[i] = {} end

  local function add_values(packed, fraud)
    local vals = split(packed)
    acc.n = acc.n + 1
    for i = 1, e.ns do acc.s[i] = acc.s[i] + tonumber(vals[i]) end
    for i = 1, e.nm do
      local v = tonumber(vals[e.ns + i])
      if acc.m[i] == nil or v > acc.m[i] then acc.m[i], acc.ms[i] = v, vals[e.ns + i] end
    end
    if fraud then acc.f = acc.f + 1 end
    for _, i in ipairs(dcols) do acc.d[i][vals[e.ns + e.nm + i]] = true end
  end

  local function add_events(s0, s1, upto)
    local members = redis.call('ZRANGEBYSCORE', E .. ':z', s0, s1)
    if #members == 0 then return end
    local kept = members
    if upto then
      kept = {}
      for _, m in ipairs(members) do if m <= upto then kept[#kept + 1] = m end end
      if #kept == 0 then return end
    end
    local packed = redis.call('HMGET', E .. ':v', unpack(kept))
    local frauds = e.lab == 1 and redis.call('HMGET', E .. ':l', unpack(kept)) or {}
    for j = 1, #kept do add_values(packed[j], frauds[j]) end
  end

  local function add_tiles(li, t0, t1)
    local tiles = redis.call('ZRANGEBYSCORE', E .. ':T' .. li, t0, t1)
    if #tiles == 0 then return end
    local fields = {}
    for k, t in ipairs(tiles) do fields[k] = li .. ':' .. t end
    local got = redis.call('HMGET', E .. ':t', unpack(fields))
    for k, text in ipairs(got) do
      local agg = split(text)
      acc.n = acc.n + tonumber(agg[1])
      acc.f = acc.f + tonumber(agg[2])
      for i = 1, e.ns do acc.s[i] = acc.s[i] + tonumber(agg[2 + i]) end
      for i = 1, e.nm do
        local mtext = agg[2 + e.ns + i]
        local v = tonumber(mtext)
        if acc.m[i] == nil or v > acc.m[i] then acc.m[i], acc.ms[i] = v, mtext end
      end
      for _, i in ipairs(dcols) do
        local values = redis.call('SMEMBERS', E .. ':d' .. i .. ':' .. fields[k])
        for _, v in ipairs(values) do acc.d[i][v] = true end
      end
    end
  end

  local function cover(a, z, k)
    if a > z then return end
    if k == 0 then add_events(a, z, nil); return end
    local L = levels[k]
    local t0, t1 = math.ceil(a / L), math.floor((z + 1) / L) - 1
    if t0 > t1 then cover(a, z, k - 1); return end
    add_tiles(k, t0, t1)
    cover(a, t0 * L - 1, k - 1)
    cover((t1 + 1) * L, z, k - 1)
  end

  local hi = b
  if lag == 0 then
    hi = b - 1
    add_events(s, s, own)
  end
  for _, width in ipairs(widths) do
    local lo = b - width + 1
    cover(lo, hi, #levels)
    hi = math.min(hi, lo - 1)
    out[#out + 1] = tostring(acc.n)
    for i = 1, e.ns do out[#out + 1] = string.format('%.0f', acc.s[i]) end
    for i = 1, e.nm do out[#out + 1] = acc.ms[i] or '' end
    if e.lab == 1 then out[#out + 1] = tostring(acc.f) end
    for _, i in ipairs(dcols) do
      local count = 0
      for _ in pairs(acc.d[i]) do count = count + 1 end
      out[#out + 1] = tostring(count)
    end
  end
end

local function previous(e, E, own)
  local rank = redis.call('ZRANK', E .. ':z', own)
  if rank and rank > 0 then
    local got = redis.call('ZRANGE', E .. ':z', rank - 1, rank - 1, 'WITHSCORES')
    return got[2]
  end
  return redis.call('HGET', E .. ':t', 'dropped') or ''
end

local function read(ev, loc, out)
  local s = tonumber(loc[1])
  for ei, e in ipairs(cfg.ents) do
    local E = ekey(e, loc[3][ei])
    for _, q in ipairs(e.q) do windows(e, E, loc[2], s, q[1], q[2], q[3], out) end
    if e.gap == 1 then out[#out + 1] = previous(e, E, loc[2]) end
  end
end

local function add(ev)
  local seq = redis.call('INCR', P .. ':seq')
  local member = string.format('%015d', seq) .. ev[1]
  local loc = {ev[2], member, ev[4]}
  redis.call('HSET', P .. ':ids', ev[1], ev[3])
  redis.call('HSET', P .. ':loc', ev[1], cjson.encode(loc))
  redis.call('ZADD', P .. ':seen', ev[2], ev[1])
  for ei, e in ipairs(cfg.ents) do
    local E = ekey(e, ev[4][ei])
    insert(e, E, member, ev[2], ev[5][ei])
  end
  return loc
end

local function labels_of(id, label)
  local text = redis.call('HGET', P .. ':loc', id)
  if not text then return 0 end
  if label == 1 then
    redis.call('HSET', P .. ':fraud', id, 1)
  else
    redis.call('HDEL', P .. ':fraud', id)
  end
  local loc = cjson.decode(text)
  for ei, e in ipairs(cfg.ents) do
    if e.lab == 1 then set_label(e, ekey(e, loc[3][ei]), loc[2], label) end
  end
  return 1
end

-- delete the fields ``names`` from each hash of ``hashes``, 1,000 per call
local function forget(hashes, names)
  for j = 1, #names, 1000 do
    local part = {unpack(names, j, math.min(j + 999, #names))}
    for _, hash in ipairs(hashes) do redis.call('HDEL', hash, unpack(part)) end
  end
end

local function trim(w, touched)
  local base = w - cfg.skew
  for E, ei in pairs(touched) do
    local e = cfg.ents[ei]
    touch(e, E)
    local cut = base - e.reach
    local last = redis.call('ZREVRANGEBYSCORE', E .. ':z', cut, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #last > 0 then
      forget({E .. ':v', E .. ':l'}, redis.call('ZRANGEBYSCORE', E .. ':z', '-inf', cut))
      redis.call('ZREMRANGEBYSCORE', E .. ':z', '-inf', cut)
      redis.call('HSET', E .. ':t', 'dropped', last[2])
    end
    for li, L in ipairs(levels) do
      local last_tile = math.floor((cut + 1) / L) - 1
      local tiles = redis.call('ZRANGEBYSCORE', E .. ':T' .. li, '-inf', last_tile)
      for j = 1, #tiles, 1000 do
        local fields = {}
        for k = j, math.min(j + 999, #tiles) do fields[#fields + 1] = li .. ':' .. tiles[k] end
        redis.call('HDEL', E .. ':t', unpack(fields))
        for i = 1, e.nd do
          for _, f in ipairs(fields) do redis.call('DEL', E .. ':d' .. i .. ':' .. f) end
        end
      end
      if #tiles > 0 then redis.call('ZREMRANGEBYSCORE', E .. ':T' .. li, '-inf', last_tile) end
    end
  end
  local old = base - cfg.longest
  local ids = redis.call('ZRANGEBYSCORE', P .. ':seen', '-inf', old)
  forget({P .. ':ids', P .. ':loc', P .. ':fraud'}, ids)
  if #ids > 0 then redis.call('ZREMRANGEBYSCORE', P .. ':seen', '-inf', old) end
end

if mode == 'labels' then
  local held = 0
  for _, pair in ipairs(cjson.decode(ARGV[3])) do held = held + labels_of(pair[1], pair[2]) end
  return {held}
end

-- the rules of fraudops.streaming.labels: every label checked, then (mode 'rule-labels') the
-- labels of held ids recorded; returns {-1, index, reason} at the first refusal, nothing
-- written, else {held, external}
if mode == 'check-labels' or mode == 'rule-labels' then
  local labels = cjson.decode(ARGV[3])
  local fraud, known = {}, {}
  for i, l in ipairs(labels) do
    local id = l[1]
    local is_held = redis.call('HEXISTS', P .. ':loc', id) == 1
    if not is_held and l[3] ~= 1 then return {-1, i - 1, 'unknown'} end
    local f = fraud[id]
    if f == nil then f = is_held and redis.call('HEXISTS', P .. ':fraud', id) == 1 end
    if f and l[2] == 0 and l[4] ~= 1 then return {-1, i - 1, 'downgrade'} end
    fraud[id] = l[2] == 1
    known[i] = is_held
  end
  local held, external = 0, 0
  for i, l in ipairs(labels) do
    if known[i] then
      held = held + 1
      if mode == 'rule-labels' then labels_of(l[1], l[2]) end
    else
      external = external + 1
    end
  end
  return {held, external}
end

local events = cjson.decode(ARGV[3])
local clock = redis.call('HMGET', P .. ':clock', 'watermark', 'moved_at')
local w, at = tonumber(clock[1]), tonumber(clock[2]) or 0
local now = tonumber(redis.call('TIME')[1])
if mode == 'score' then
  local cw, cat = w, at
  local pending = {}
  for i, ev in ipairs(events) do
    local s = ev[2]
    if cw then
      if s > cw + cfg.skew + math.max(0, now - cat) then return {i, 'ahead', cw} end
      if s <= cw - cfg.ret - cfg.skew then return {i, 'too_old', cw} end
    end
    local known = pending[ev[1]] or redis.call('HGET', P .. ':ids', ev[1])
    if known and known ~= ev[3] then return {i, 'conflict', cw or -1, known} end
    pending[ev[1]] = known or ev[3]
    if (not cw) or s > cw then cw, cat = s, now end
  end
end
local out = {0, '', 0}
local touched = {}
local moved = false
local inserted = 0
for _, ev in ipairs(events) do
  local held = redis.call('HGET', P .. ':loc', ev[1])
  local loc
  if held then
    loc = cjson.decode(held)
  else
    loc = add(ev)
    inserted = inserted + 1
    for ei, e in ipairs(cfg.ents) do touched[ekey(e, ev[4][ei])] = ei end
    if mode == 'load' and ev[6] == 1 then labels_of(ev[1], 1) end
  end
  if mode == 'score' then read(ev, loc, out) end
  if (not w) or ev[2] > w then w, at, moved = ev[2], now, true end
end
if not w then return {0, '', -1} end
if moved then redis.call('HSET', P .. ':clock', 'watermark', w, 'moved_at', at) end
trim(w, touched)
out[3] = w
if mode == 'load' then out[4] = inserted end
return out
"""
