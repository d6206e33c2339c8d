// SPDX-License-Identifier: GPL-2.0
/*
 * pair_consumer.c - uses pair_provider_add() from the other module.
 */
#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/printk.h>

#include "pair_provider.h"

static struct dentry *consumer_dir;
static u32 sum;

static int __init pair_consumer_init(void)
{
	sum = pair_provider_add(2, 3);
	pr_info("pair_consumer: 2 + 3 = %u\n", sum);
	consumer_dir = debugfs_create_dir("pair_consumer", NULL);
	debugfs_create_u32("sum", 0444, consumer_dir, &sum);
	return 0;
}

static void __exit pair_consumer_exit(void)
{
	debugfs_remove_recursive(consumer_dir);
}

module_init(pair_consumer_init);
module_exit(pair_consumer_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Uses pair_provider_add()");
