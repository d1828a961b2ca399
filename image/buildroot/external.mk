# Redfin BR2_EXTERNAL tree: every package under package/.
include $(sort $(wildcard $(BR2_EXTERNAL_REDFIN_PATH)/package/*/*.mk))

# The top of the Redfin source tree (this tree lives in image/buildroot/ of it).
REDFIN_SOURCE_DIR = $(realpath $(BR2_EXTERNAL_REDFIN_PATH)/../..)
