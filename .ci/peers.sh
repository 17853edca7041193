# Installs the real peers the tests use (see shared/reference/test-peers.md).
# Idempotent: what is already there is not installed again.
# Sourced by .ci/test.

# Debian packages the test suite needs.
PEER_PACKAGES=(openssh-client openssh-server sshpass python3-venv keyutils openssl systemd bsdutils util-linux
    sudo python3-seccomp
    # the package: its build (dpkg-shlibdeps), Debian's checker, a booted systemd
    dpkg-dev lintian systemd-container debootstrap
    # promtool, which checks the metrics file
    prometheus)
# Cargo tools, installed with `cargo install --locked` when missing.
PEER_CARGO_TOOLS=(cargo-deb cargo-deny)
# An unprivileged account for the tests that run nightshift as another
# user (`sudo -u`): the kernel keyring is per uid.
PEER_USER=nightshift-test
# Python peers, in a venv under target/ (tests find it there).
PEER_VENV=target/peers/venv
PEER_PYTHON_PACKAGES=(netmiko==4.8.0 aiosmtpd==1.4.6)

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
    install_cargo_tools
    if ! id "$PEER_USER" >/dev/null 2>&1; then
        echo "creating the test user $PEER_USER"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PEER_USER"
    fi
    if ! "$PEER_VENV/bin/python" -c "import netmiko, aiosmtpd" 2>/dev/null; then
        echo "installing python test peers: ${PEER_PYTHON_PACKAGES[*]}"
        mkdir -p "$(dirname "$PEER_VENV")"
        python3 -m venv "$PEER_VENV"
        "$PEER_VENV/bin/pip" install -q "${PEER_PYTHON_PACKAGES[@]}"
    fi
}

install_cargo_tools() {
    for t in "${PEER_CARGO_TOOLS[@]}"; do
        if ! cargo "${t#cargo-}" --version >/dev/null 2>&1; then
            echo "installing $t"
            cargo install --locked --quiet "$t"
        fi
    done
}
