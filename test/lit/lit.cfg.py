import os
import shutil
import lit.formats

config.name = "Transfuse"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(os.path.dirname(config.transfuse_bin_dir),
                                     "test", "lit-out")
path = os.pathsep.join([config.transfuse_bin_dir, config.llvm_tools_dir,
                        config.environment.get("PATH", os.environ.get("PATH", ""))])
config.environment["PATH"] = path
config.substitutions.append(("%python", config.python))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root,
                                                      "importer", "Inputs")))
config.substitutions.append(("%models", os.path.join(config.transfuse_src_root,
                                                      "test", "models")))
# The public C API's headers (transfuse/transfuse.h).
config.substitutions.append(("%transfuse_include", os.path.join(
    config.transfuse_src_root, "runtime", "include")))
# The runtime archive a model's objects link with (the driver's own link).
config.substitutions.append(("%transfuse_lib", os.path.join(
    os.path.dirname(config.transfuse_bin_dir), "lib")))
# GNU's C++ driver, for the tests of linking with GNU ld.
if shutil.which("g++"):
    config.available_features.add("g++")
