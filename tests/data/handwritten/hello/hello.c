// SPDX-License-Identifier: GPL-2.0
/*
 * hello.c - the simplest kernel module.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static int __init hello_init(void)
{
	pr_info("Hello world 1.\n");
	return 0;
}

static void __exit hello_exit(void)
{
	pr_info("Goodbye world 1.\n");
}

module_init(hello_init);
module_exit(hello_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("The classic hello world");
