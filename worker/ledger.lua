-- The chunk ledger of one job: every transition is one atomic step.
--
-- KEYS[1] ledger hash: chunk id -> "pending" | "<state>:<attempt>:<ms>"
--         (state in_flight | done | failed | unknown; ms = Redis TIME of the transition)
-- KEYS[2] counts hash: state -> chunks in that state, plus "total"
-- KEYS[3] finalize guard (string)
-- ARGV[1] operation, then its arguments:
--   create   ttl_ms chunk...            -> chunks added (existing ones keep their state)
--   claim    chunk attempt resend(0|1)  -> {outcome, state, attempt, ms}
--   release  chunk attempt              -> 1 if the attempt held it (now pending), else 0
--   complete chunk attempt final        -> 1 if the attempt held it (or already completed it)
--   finalize default_ttl_ms             -> 1 the first time only

if redis.replicate_commands then redis.replicate_commands() end  -- TIME before writes (Redis < 5)

local ledger, counts, guard = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end

-- "in_flight:abc:1700000000000" -> "in_flight", "abc", "1700000000000"
local function parse(value)
  local state, attempt, ms = string.match(value, '^([^:]+):([^:]*):(%d+)$')
  if state then return state, attempt, ms end
  return value, '', ''
end

local function entry(chunk)
  local value = redis.call('HGET', ledger, chunk)
  if not value then
    return nil
  end
  return parse(value)
end

local function move(chunk, from, to, attempt)
  local value = to
  if to ~= 'pending' then value = to .. ':' .. attempt .. ':' .. now_ms() end
  redis.call('HSET', ledger, chunk, value)
  redis.call('HINCRBY', counts, from, -1)
  redis.call('HINCRBY', counts, to, 1)
end

local function missing(chunk)
  return redis.error_reply('ERR smspipe ledger: no chunk ' .. chunk .. ' in ' .. ledger)
end

if op == 'create' then
  local added = 0
  for i = 3, #ARGV do
    added = added + redis.call('HSETNX', ledger, ARGV[i], 'pending')
  end
  redis.call('HINCRBY', counts, 'pending', added)
  redis.call('HINCRBY', counts, 'total', added)
  redis.call('PEXPIRE', ledger, ARGV[2])  -- a second create extends the ledger's life
  redis.call('PEXPIRE', counts, ARGV[2])
  return added

elseif op == 'claim' then
  local chunk, attempt, resend = ARGV[2], ARGV[3], ARGV[4] == '1'
  local state, held_by, since = entry(chunk)
  if not state then return missing(chunk) end
  if state == 'pending' then
    move(chunk, state, 'in_flight', attempt)
    return {'send', state, held_by, since}
  elseif state == 'in_flight' then
    if resend then
      move(chunk, state, 'in_flight', attempt)
      return {'send', state, held_by, since}
    end
    -- An earlier attempt wrote in_flight and never finished: the provider may have the chunk.
    move(chunk, state, 'unknown', held_by)
    return {'ambiguous', state, held_by, since}
  elseif state == 'unknown' then
    return {'skip_unknown', state, held_by, since}
  end
  return {'skip_done', state, held_by, since}

elseif op == 'release' or op == 'complete' then
  local chunk, attempt = ARGV[2], ARGV[3]
  local target = 'pending'
  if op == 'complete' then target = ARGV[4] end
  local state, held_by = entry(chunk)
  if not state then return missing(chunk) end
  if state == 'in_flight' and held_by == attempt then
    move(chunk, state, target, attempt)
    return 1
  end
  if op == 'complete' and state == target and held_by == attempt then
    return 1  -- the same completion, repeated
  end
  return 0

elseif op == 'finalize' then
  local ttl = redis.call('PTTL', counts)
  if ttl <= 0 then ttl = tonumber(ARGV[2]) end
  if redis.call('SET', guard, now_ms(), 'NX', 'PX', ttl) then return 1 end
  return 0
end
return redis.error_reply('ERR smspipe ledger: unknown operation ' .. tostring(op))
