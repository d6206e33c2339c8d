// SPDX-License-Identifier: GPL-2.0
#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/slab.h>

static struct dentry *dir;
static char *buf;
static struct debugfs_blob_wrapper blob = { .size = 8 };

static int __init leak_init(void)
{
	buf = kzalloc(96, GFP_KERNEL);	/* never freed */
	if (!buf)
		return -ENOMEM;
	dir = debugfs_create_dir("leak", NULL);
	blob.data = buf;
	debugfs_create_blob("buf", 0444, dir, &blob);
	return 0;
}

static void __exit leak_exit(void)
{
	debugfs_remove_recursive(dir);
}

module_init(leak_init);
module_exit(leak_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Allocates a buffer in init and never frees it");
