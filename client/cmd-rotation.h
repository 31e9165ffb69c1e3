/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-rotation: snpctl's rotation and TCB commands (cert rotate, tcb show|set|commit, vlek
 * load), answered by the daemon once the operation has finished. */
#pragma once

int snpctl_cert_rotate(int argc, char **argv);
int snpctl_cert_show(int argc, char **argv);
int snpctl_cert_export(int argc, char **argv);
int snpctl_cert_import(int argc, char **argv);
int snpctl_cert_fetch(int argc, char **argv);
int snpctl_tcb_show(int argc, char **argv);
int snpctl_tcb_set(int argc, char **argv);
int snpctl_tcb_commit(int argc, char **argv);
int snpctl_vlek_load(int argc, char **argv);

extern const char snpctl_help_cert_rotate[], snpctl_help_cert_show[], snpctl_help_cert_export[],
	snpctl_help_cert_import[], snpctl_help_cert_fetch[], snpctl_help_tcb_show[],
	snpctl_help_tcb_set[], snpctl_help_tcb_commit[], snpctl_help_vlek_load[];
