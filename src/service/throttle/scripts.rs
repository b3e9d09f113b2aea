//! The Redis scripts of the counters: each decision one script, atomic on one cluster slot.

/// A lockout counter in one script. KEYS: counter, family mark, attempts in flight (a
/// sorted set of attempt ids scored by when they lapse). ARGV: op, now (ms), max failures,
/// window, first lockout, max lockout (ms), attempt id, in-flight lifetime (ms).
/// - `attempt`: {-1, remaining ms} while locked; {-2, 0} while the attempts in flight use
///   up what is left of the budget (the caller waits for their outcome: rule 15.6);
///   otherwise the attempt is put in flight and {failures, 0} returned. No more than the
///   limit are ever being checked, however many guesses arrive at once.
/// - `fail`: the attempt in flight failed: counted, and {failures, lockout begun in ms or 0}.
/// - `release`: the attempt in flight ended without failing.
/// - `clear`: forgets the key; `clear-family`: forgets every key of the family.
pub(super) const LOCKOUT: &str = r#"
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[4])
local op = ARGV[1]
if op == 'clear' then
  redis.call('DEL', KEYS[1])
  return 0
end
if op == 'clear-family' then
  redis.call('SET', KEYS[2], now, 'PX', window)
  redis.call('DEL', KEYS[1])
  return 0
end
if op == 'release' then
  redis.call('ZREM', KEYS[3], ARGV[7])
  return 0
end
local f = redis.call('HMGET', KEYS[1], 'failures', 'lockouts', 'locked_until', 'since')
local failures, lockouts, locked_until, since = tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0, tonumber(f[4]) or now
local cleared = tonumber(redis.call('GET', KEYS[2])) or 0
if since < cleared or now - since > window then
  failures, lockouts, locked_until, since = 0, 0, 0, now
end
local max = tonumber(ARGV[3])
if op == 'attempt' then
  if locked_until > now then return {-1, locked_until - now} end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= math.max(max - failures, 1) then return {-2, 0} end
  local lifetime = tonumber(ARGV[8])
  redis.call('ZADD', KEYS[3], now + lifetime, ARGV[7])
  redis.call('PEXPIRE', KEYS[3], lifetime)
  return {failures, 0}
end
redis.call('ZREM', KEYS[3], ARGV[7])
local begun = 0
failures = failures + 1
if max > 0 and failures >= max then
  lockouts = lockouts + 1
  begun = math.min(tonumber(ARGV[5]) * 2 ^ (lockouts - 1), tonumber(ARGV[6]))
  locked_until = now + begun
end
redis.call('HSET', KEYS[1], 'failures', failures, 'lockouts', lockouts, 'locked_until', locked_until, 'since', since)
redis.call('PEXPIRE', KEYS[1], math.max(window - (now - since), locked_until - now) + 1000)
return {failures, begun}
"#;

/// A window counter in one script. KEYS: counter. ARGV: limit, window (ms). Counts the hit
/// and returns {hits, remaining ms of the window}.
pub(super) const WINDOW: &str = r#"
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])); ttl = tonumber(ARGV[2]) end
return {hits, ttl}
"#;
