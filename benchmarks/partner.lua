-- What wrk sends for benchmarks/bench.py and benchmarks/load.py, and how it checks the answers.
--
-- The Python side writes `config = {...}` above this text (see `lua_config` in bench.py):
--   pattern      the kinds of request, in the order they repeat: "cached", "revalidate",
--                "uncached", "changes" (a one-kind pattern for a single scenario)
--   fixed        for each kind but "uncached": { path = ..., headers = {...} }
--   uncached     { prefix, suffix, headers, groups, group_format, locales, categories,
--                  topics, concerns, offset }: a product page whose variables come from a
--                  counter, so that every request is a cache key never asked before
--   threads      wrk's -t, so that threads take different counters
--   max_requests at most this many answers over all threads (0: no bound)
--
-- Every answer's status is counted by the `response` hook; a 200 whose body carries GraphQL
-- `errors` is counted apart. `done` prints one line, WRK_RESULT {json}, for the Python side.

local threads = {}
local thread_total = 0

function setup(thread)
  thread:set("thread_index", thread_total)
  thread_total = thread_total + 1
  table.insert(threads, thread)
end

-- per thread (each wrk thread runs its own copy of this script)
thread_index = 0
statuses = {}
graphql_errors = 0
answers = 0
smallest = -1 -- bytes of the smallest and largest 200 body: uncached pages keep one size
largest = 0
sent = 0
uncached_sent = 0

local prepared = {}
local per_thread_limit = 0

function init(args)
  for kind, spec in pairs(config.fixed) do
    prepared[kind] = wrk.format("GET", spec.path, spec.headers)
  end
  if config.max_requests > 0 then
    per_thread_limit = math.ceil(config.max_requests / config.threads)
  end
end

local function urlencode(text)
  return (string.gsub(text, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local function quoted_list(items)
  local parts = {}
  for i, item in ipairs(items) do
    parts[i] = '"' .. item .. '"'
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

-- The subset of `items` whose positions are the set bits of `mask`.
local function subset(items, mask)
  local chosen = {}
  for _, item in ipairs(items) do
    if mask % 2 == 1 then
      table.insert(chosen, item)
    end
    mask = math.floor(mask / 2)
  end
  return chosen
end

-- The variables of product page number `index`: its product group's topic (which names the
-- ten snippets shown), a locale, with or without a category, and any subset of the catalog's
-- topics and concerns (which the generated snippets do not carry, so the page stays the same
-- size while the cache key changes). Distinct indexes give distinct variables.
local function product_variables(index)
  local u = config.uncached
  local group = index % u.groups
  local rest = math.floor(index / u.groups)
  local locale = u.locales[rest % #u.locales + 1]
  rest = math.floor(rest / #u.locales)
  local category = u.categories[rest % #u.categories + 1]
  rest = math.floor(rest / #u.categories)
  local topic_masks = 2 ^ #u.topics
  local topics = subset(u.topics, rest % topic_masks)
  rest = math.floor(rest / topic_masks)
  local concerns = subset(u.concerns, rest % (2 ^ #u.concerns))
  table.insert(topics, 1, string.format(u.group_format, group))
  local product = '"concerns":' .. quoted_list(concerns) .. ',"topics":' .. quoted_list(topics)
  if category ~= "" then
    product = '"category":"' .. category .. '",' .. product
  end
  return '{"product":{' .. product .. '},"market":"' .. u.market .. '","locale":"' .. locale .. '"}'
end

local function uncached_request()
  local u = config.uncached
  local index = u.offset + thread_index + config.threads * uncached_sent
  uncached_sent = uncached_sent + 1
  local path = u.prefix .. urlencode(product_variables(index)) .. u.suffix
  return wrk.format("GET", path, u.headers)
end

function request()
  sent = sent + 1
  local kind = config.pattern[(sent - 1) % #config.pattern + 1]
  if kind == "uncached" then
    return uncached_request()
  end
  return prepared[kind]
end

function response(status, headers, body)
  answers = answers + 1
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status == 200 and body ~= nil then
    if string.find(body, '"errors":', 1, true) then
      graphql_errors = graphql_errors + 1
    end
    if smallest < 0 or #body < smallest then
      smallest = #body
    end
    largest = math.max(largest, #body)
  end
  if per_thread_limit > 0 and answers >= per_thread_limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total = {}
  local errors_in_bodies = 0
  local most_uncached = 0
  local least_bytes = -1
  local most_bytes = 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
    errors_in_bodies = errors_in_bodies + thread:get("graphql_errors")
    most_uncached = math.max(most_uncached, thread:get("uncached_sent"))
    local small = thread:get("smallest")
    if small >= 0 and (least_bytes < 0 or small < least_bytes) then
      least_bytes = small
    end
    most_bytes = math.max(most_bytes, thread:get("largest"))
  end
  local parts = {}
  for status, count in pairs(total) do
    table.insert(parts, string.format('"%s":%d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"socket_errors":%d,"graphql_errors":%d,"uncached_per_thread":%d,'
      .. '"body_min":%d,"body_max":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, errors_in_bodies, most_uncached,
    math.max(least_bytes, 0), most_bytes,
    table.concat(parts, ",")
  ))
end
