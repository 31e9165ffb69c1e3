/* SPDX-License-Identifier: Apache-2.0 */
/* sim-tls: the KDS simulator's test TLS identity (a CA and a server certificate for the
 * loopback names), kept in a directory. File I/O only; never logs. */
#pragma once

/* Loads <dir>/tls/{ca,server}.{pem,key}, generating them (EC P-256, 0600) if absent.
 * Returns the server certificate and key as PEM strings and the CA certificate's path, all
 * malloc'd. The server certificate names localhost, 127.0.0.1 and ::1. */
int sim_tls_prepare(const char *dir, char **ret_cert_pem, char **ret_key_pem, char **ret_ca_path);
