-- The shared schedule of one provider account: GCRA on Redis TIME, two limits in one call.
--
-- KEYS[1]  hash: requests = TAT of the requests limit, messages = TAT of the messages limit,
--          penalty = no slot before this (a 429's Retry-After), last = Redis time of the last call.
--          All times are integer microseconds of Redis TIME.
-- ARGV[1]  "acquire" | "penalize"
-- acquire:  ARGV[2] messages (cost on the messages limit; the request costs 1 request)
--           ARGV[3] request interval us (0 = limit off)   ARGV[4] request tolerance us
--           ARGV[5] message interval us (0 = limit off)   ARGV[6] message tolerance us
--           ARGV[7] max wait us (-1 = no maximum)          ARGV[8] idle ttl ms
--           -> {delay_us, reserved (1|0)}: reserved = 0 when the slot is later than max wait
--              (nothing was written).
-- penalize: ARGV[2] seconds in us, ARGV[3] idle ttl ms -> penalty remaining in us
--
-- Reservation ("virtual scheduling"): slot = max(now, penalty, TAT_k - tol_k for each limit k);
-- then TAT_k = max(TAT_k, now, slot) + interval_k * cost_k. The TAT is moved up to the slot
-- that was actually granted so that a limit that was not the binding one never lends credit
-- from before that slot: every limit keeps slot_j >= TAT_k(j-1) - tol_k >= slot_i + interval_k *
-- (costs of i..j-1) - tol_k for any earlier reservation i, which is the window bound
-- (see worker/ratelimit.py).

if redis.replicate_commands then redis.replicate_commands() end  -- TIME before writes (Redis < 5)

local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local s = redis.call('HMGET', key, 'requests', 'messages', 'penalty', 'last')
local tat_req = tonumber(s[1]) or 0
local tat_msg = tonumber(s[2]) or 0
local penalty = tonumber(s[3]) or 0
local last = tonumber(s[4]) or now
local stepped = now < last
if stepped then
  -- The server's clock stepped back: keep the schedule at the same distance from "now", else
  -- every sender would wait out the step.
  local step = last - now
  tat_req, tat_msg, penalty = tat_req - step, tat_msg - step, penalty - step
end

local function fmt(x) return string.format('%.0f', math.ceil(x)) end

-- Writes only what changed (plus "last"): with appendfsync always, every byte is fsynced.
local function store(idle_ms, ...)
  if stepped then  -- every time moved: write them all
    redis.call('HSET', key, 'last', fmt(now), 'requests', fmt(tat_req), 'messages', fmt(tat_msg),
               'penalty', fmt(penalty))
  else
    redis.call('HSET', key, 'last', fmt(now), ...)
  end
  local horizon = math.max(tat_req, tat_msg, penalty) - now
  redis.call('PEXPIRE', key, math.max(0, math.ceil(horizon / 1000)) + idle_ms)
end

local op = ARGV[1]
if op == 'acquire' then
  local cost = tonumber(ARGV[2])
  local req_t, req_tol = tonumber(ARGV[3]), tonumber(ARGV[4])
  local msg_t, msg_tol = tonumber(ARGV[5]), tonumber(ARGV[6])
  local max_wait = tonumber(ARGV[7])

  local slot = math.max(now, penalty)
  if req_t > 0 then slot = math.max(slot, tat_req - req_tol) end
  if msg_t > 0 then slot = math.max(slot, tat_msg - msg_tol) end
  slot = math.ceil(slot)
  local delay = slot - now
  if max_wait >= 0 and delay > max_wait then
    return {delay, 0}
  end
  local idle_ms = tonumber(ARGV[8])
  if req_t > 0 then tat_req = math.max(tat_req, slot) + req_t end
  if msg_t > 0 then tat_msg = math.max(tat_msg, slot) + msg_t * cost end
  if req_t > 0 and msg_t > 0 then
    store(idle_ms, 'requests', fmt(tat_req), 'messages', fmt(tat_msg))
  elseif req_t > 0 then
    store(idle_ms, 'requests', fmt(tat_req))
  elseif msg_t > 0 then
    store(idle_ms, 'messages', fmt(tat_msg))
  else
    store(idle_ms)
  end
  return {delay, 1}
elseif op == 'penalize' then
  penalty = math.max(penalty, now + tonumber(ARGV[2]))
  store(tonumber(ARGV[3]), 'penalty', fmt(penalty))
  return math.ceil(penalty - now)
end
return redis.error_reply('ERR smspipe ratelimit: unknown operation ' .. tostring(op))
