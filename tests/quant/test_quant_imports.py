import subprocess
import sys


def test_quant_and_bitnet_config_import_without_torch():
    code = ("import sys, quant, quant.qtype, models.bitnet, models.bitnet.config; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
