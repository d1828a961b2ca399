################################################################################
#
# console-proxy
#
################################################################################

CONSOLE_PROXY_VERSION = 0.1.0
CONSOLE_PROXY_SITE = $(REDFIN_SOURCE_DIR)
CONSOLE_PROXY_SITE_METHOD = local
CONSOLE_PROXY_LICENSE = Apache-2.0

CONSOLE_PROXY_CARGO_BUILD_OPTS = --package console-proxy --offline --config .cargo/vendor.toml
CONSOLE_PROXY_CARGO_INSTALL_OPTS = --path console-proxy --offline --config .cargo/vendor.toml
CONSOLE_PROXY_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
	CARGO_PROFILE_RELEASE_LTO=fat \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
	CARGO_PROFILE_RELEASE_PANIC=abort

$(eval $(cargo-package))
