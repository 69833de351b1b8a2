-- wrk script for `POST /api/v1/payments` (host/benches/payments drives it; see README
-- "Performance"). Run as
--   BENCH_CUSTOMERS=customers.txt BENCH_PROVIDER=echo BENCH_PAYMENT_METHOD=tok_bench BENCH_RUN=r1 \
--     wrk -t2 -c8 -d10s --latency -s bench/wrk/payments.lua http://127.0.0.1:8080
-- BENCH_CUSTOMERS names a file with one customer per line, "<bearer token> <lease id>" (an
-- active lease of that customer). Each request pays 1000 EUR minor units for the next customer
-- in turn, under an Idempotency-Key of its own: "<BENCH_RUN>-<thread>-<n>".
-- When wrk is done, one line "WRK_RESULT {json}" gives the figures the bench reads (latencies
-- in microseconds, as wrk measures them from its own side of the socket).

local function required(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set (see the head of bench/wrk/payments.lua)")
  end
  return value
end

local function load_customers(path)
  local customers = {}
  local file = assert(io.open(path, "r"), "cannot open " .. path)
  for line in file:lines() do
    local token, lease = line:match("^(%S+)%s+(%S+)$")
    if token then
      customers[#customers + 1] = { token = token, lease = lease }
    end
  end
  file:close()
  assert(#customers > 0, path .. " holds no customer lines")
  return customers
end

local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  threads[#threads + 1] = thread
end

local customers, provider, method, run
local counter = 0

function init(args)
  customers = load_customers(required("BENCH_CUSTOMERS"))
  provider = required("BENCH_PROVIDER")
  method = required("BENCH_PAYMENT_METHOD")
  run = required("BENCH_RUN")
  -- Threads start at different customers so that they do not move in step.
  counter = thread_id * 7919
end

function request()
  counter = counter + 1
  local customer = customers[(counter % #customers) + 1]
  local body = string.format(
    '{"lease_id":"%s","amount":1000,"currency":"EUR","provider":"%s","payment_method":"%s"}',
    customer.lease, provider, method)
  local headers = {
    ["Authorization"] = "Bearer " .. customer.token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("%s-%d-%d", run, thread_id, counter),
  }
  return wrk.format("POST", "/api/v1/payments", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "non_2xx": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.status, e.connect, e.read, e.write, e.timeout))
end
