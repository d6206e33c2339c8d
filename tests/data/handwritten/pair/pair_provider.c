// SPDX-License-Identifier: GPL-2.0
/*
 * pair_provider.c - exports a function another module uses.
 */
#include <linux/debugfs.h>
#include <linux/export.h>
#include <linux/module.h>

#include "pair_provider.h"

static struct dentry *provider_dir;
static u32 calls;

int pair_provider_add(int a, int b)
{
	calls++;
	return a + b;
}
EXPORT_SYMBOL_GPL(pair_provider_add);

static int __init pair_provider_init(void)
{
	provider_dir = debugfs_create_dir("pair_provider", NULL);
	debugfs_create_u32("calls", 0444, provider_dir, &calls);
	return 0;
}

static void __exit pair_provider_exit(void)
{
	debugfs_remove_recursive(provider_dir);
}

module_init(pair_provider_init);
module_exit(pair_provider_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Exports pair_provider_add()");
