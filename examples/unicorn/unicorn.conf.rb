# Unicorn for `allocbench measure`: the app loaded once in the master, then 2
# workers forked from it, on 127.0.0.1:$PORT (8080 unless set). The pid file
# goes to the temporary directory and the log to stderr, so it runs from any
# directory without writing into it.
require "tmpdir"

port = ENV.fetch("PORT", "8080")
worker_processes 2
preload_app true
listen "127.0.0.1:#{port}"
pid File.join(Dir.tmpdir, "allocbench-unicorn-#{port}.pid")
# No access log and no Rack::Lint: the requests are the load, not the output.
default_middleware false
timeout 30
