# A small Rack app for `allocbench measure`: the master preloads a catalogue
# (about 14 MiB of strings and hashes) that the workers share after the fork,
# and every request builds and drops a few hundred KiB of hashes, strings and
# arrays, keeping some pages in a small LRU cache so that objects of
# different ages mix in the heap, as in a real app.

CATALOG = Array.new(20_000) do |i|
  { id: i, name: "item-#{i}", text: "description of item #{i} " * 8, tags: ["new", (i % 7).to_s] }
end.freeze

# Up to CACHE_PAGES rendered pages, least recently used first (a Hash keeps
# insertion order).
CACHE_PAGES = 64
CACHE = {}

def render(first)
  page = CATALOG[first, 500].map { |it| it.merge(score: it[:name].size * 1.5, body: it[:text] * 2) }
  page.map { |it| "#{it[:id]}\t#{it[:name]}\t#{it[:score]}\t#{it[:body].bytesize}" }.join("\n")
end

run(lambda do |_env|
  first = rand(256) * 64
  body = CACHE.delete(first) || render(first)
  CACHE[first] = body
  CACHE.delete(CACHE.first[0]) while CACHE.size > CACHE_PAGES
  [200, { "content-type" => "text/plain", "content-length" => body.bytesize.to_s }, [body]]
end)
