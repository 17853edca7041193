# Installs the real peers the tests use (see shared/reference/test-peers.md).
# Idempotent: packages already present are not installed again.
# Sourced by .ci/test.

# Debian packages the test suite needs; grows as tests gain peers.
PEER_PACKAGES=()

install_peers() {
    local missing=()
    for p in "${PEER_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing test peers: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}
