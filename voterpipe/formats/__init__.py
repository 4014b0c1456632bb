"""State voter-file formats as data (config/formats/*.toml) and the streaming importer that reads them."""

RULES_VERSION = "2"  # bump when the import changes what a raw line becomes (stage identity)

from voterpipe.formats.importer import DropError, DropPlan, import_drop, plan_drop  # noqa: F401
from voterpipe.formats.layouts import Layout, LayoutError, detect_file, layouts_for_state, load_layouts  # noqa: F401
