#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Independent check of an ATTESTATION_REPORT signature with nothing of this project's code:
# takes R and S (72-byte little-endian fields at 0x2A0 / 0x2E8), encodes them as a DER
# ECDSA-Sig-Value by hand, and asks `openssl dgst -sha384 -verify` over bytes 0..0x29F with the
# public key of the VCEK. Usage: report-openssl.py REPORT VCEK.pem WORKDIR; exit 0 if valid.
import subprocess
import sys


def der_int(le: bytes) -> bytes:
    v = int.from_bytes(le, "little")
    b = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + der_len(len(b)) + b


def der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def main() -> int:
    report, vcek, work = sys.argv[1:4]
    data = open(report, "rb").read()
    if len(data) != 0x4A0:
        print(f"report is {len(data)} bytes, not 1184")
        return 1
    r, s = data[0x2A0:0x2A0 + 72], data[0x2E8:0x2E8 + 72]
    seq = der_int(r) + der_int(s)
    sig = b"\x30" + der_len(len(seq)) + seq
    open(f"{work}/signed.bin", "wb").write(data[:0x2A0])
    open(f"{work}/sig.der", "wb").write(sig)
    subprocess.run(["openssl", "x509", "-in", vcek, "-pubkey", "-noout", "-out",
                    f"{work}/vcek-pub.pem"], check=True)
    res = subprocess.run(["openssl", "dgst", "-sha384", "-verify", f"{work}/vcek-pub.pem",
                          "-signature", f"{work}/sig.der", f"{work}/signed.bin"],
                         capture_output=True, text=True)
    print(res.stdout.strip() or res.stderr.strip())
    return 0 if res.returncode == 0 and "Verified OK" in res.stdout else 1


if __name__ == "__main__":
    sys.exit(main())
