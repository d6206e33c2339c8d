/* SPDX-License-Identifier: GPL-2.0 */
#ifndef PAIR_PROVIDER_H
#define PAIR_PROVIDER_H

int pair_provider_add(int a, int b);

#endif /* PAIR_PROVIDER_H */
