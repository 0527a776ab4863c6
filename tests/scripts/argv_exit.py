# Checks what `qmtkit run` gives a script: its argv, __main__, an untouched stdout, exit codes.
import os
import sys

print(os.path.basename(sys.argv[0]), sys.argv[1:])
if __name__ == "__main__":
    print("main")
if sys.argv[1:] == ["raise"]:
    raise RuntimeError("asked to fail")
sys.exit(int(sys.argv[-1]))
