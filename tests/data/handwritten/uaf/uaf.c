// SPDX-License-Identifier: GPL-2.0
#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/slab.h>

static struct dentry *dir;
static u32 v = 1;

static int __init uaf_init(void)
{
	char *volatile p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	kfree(p);
	p[8] = 'x';	/* use after free */
	dir = debugfs_create_dir("uaf", NULL);
	debugfs_create_u32("v", 0444, dir, &v);
	return 0;
}

static void __exit uaf_exit(void)
{
	debugfs_remove_recursive(dir);
}

module_init(uaf_init);
module_exit(uaf_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Writes to memory it has just freed");
