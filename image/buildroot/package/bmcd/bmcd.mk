################################################################################
#
# bmcd
#
################################################################################

BMCD_VERSION = 0.1.0
# The Redfin source tree this BR2_EXTERNAL tree is part of (a cargo workspace).
BMCD_SITE = $(REDFIN_SOURCE_DIR)
BMCD_SITE_METHOD = local
BMCD_LICENSE = Apache-2.0
BMCD_DEPENDENCIES = libvirt host-pkgconf

# Offline: the crates come from VENDOR/ at the top of the source tree, made beforehand with
# image/buildroot/vendor.sh (cargo vendor --locked), which also writes .cargo/vendor.toml (the source replacement).
BMCD_CARGO_BUILD_OPTS = --package bmcd --offline --config .cargo/vendor.toml
BMCD_CARGO_INSTALL_OPTS = --path bmcd --offline --config .cargo/vendor.toml
# Buildroot sets the release profile from BR2_OPTIMIZE_* and BR2_ENABLE_LTO; keep ours
# (size-tuned: LTO, one codegen unit, abort on panic) as in the workspace Cargo.toml.
BMCD_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
	CARGO_PROFILE_RELEASE_LTO=fat \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
	CARGO_PROFILE_RELEASE_PANIC=abort \
	PKG_CONFIG_ALLOW_CROSS=1

$(eval $(cargo-package))
