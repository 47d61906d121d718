#!/usr/bin/env bash
# Fetches the pinned GraphiQL, React and graphql-ws releases from the npm registry
# and copies their browser builds and licences here. kith embeds these files in its
# binary (src/http/graphiql), so /graphiql needs nothing from the internet.
# To move to another release: change a version below, run this, and run the
# browser test (`.ci/run` runs it; or e2e/ `npm run graphiql`).
set -euo pipefail
cd "$(dirname "$0")"
GRAPHIQL=4.1.2
REACT=18.3.1   # React 19 ships no browser (UMD) build; GraphiQL 4 takes 18 or 19.
GRAPHQL_WS=6.0.8

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for pkg in "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" "graphql-ws@$GRAPHQL_WS"; do
  name=${pkg%@*}
  mkdir -p "$tmp/$name"
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  tar xzf "$tmp"/"$name"-*.tgz -C "$tmp/$name" --strip-components=1
done
cp "$tmp/graphiql/graphiql.min.js" "$tmp/graphiql/graphiql.min.css" .
cp "$tmp/graphiql/LICENSE" LICENSE.graphiql
cp "$tmp/react/umd/react.production.min.js" .
cp "$tmp/react/LICENSE" LICENSE.react
cp "$tmp/react-dom/umd/react-dom.production.min.js" .
cp "$tmp/react-dom/LICENSE" LICENSE.react-dom
cp "$tmp/graphql-ws/umd/graphql-ws.min.js" .
cp "$tmp/graphql-ws/LICENSE.md" LICENSE.graphql-ws
cat > VERSIONS <<VERSIONS
graphiql $GRAPHIQL
react $REACT
react-dom $REACT
graphql-ws $GRAPHQL_WS
VERSIONS
sha256sum ./*.js ./*.css > SHA256SUMS
