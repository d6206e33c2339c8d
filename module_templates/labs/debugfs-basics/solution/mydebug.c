// SPDX-License-Identifier: GPL-2.0
/*
 * mydebug: the classic debugfs example.
 *
 * /sys/kernel/debug/mydebug/
 *   a         a u8, mode 0644, starts at 5
 *   b         a blob over a 32-byte char array, mode 0644
 *   subdir/c  a 32-byte char buffer with its own file_operations
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/types.h>
#include <linux/uaccess.h>

#define C_SIZE 32

static struct dentry *mydebug_root;

static u8 a = 5;

static char b_data[32] = "Hello world!\n";
static struct debugfs_blob_wrapper b_blob = {
	.data = b_data,
	.size = sizeof(b_data),
};

static char c_data[C_SIZE] = "c data\n";
static size_t c_len = 7;
static DEFINE_MUTEX(c_lock); /* protects c_data and c_len */

/**
 * c_read() - read subdir/c: exactly the bytes last written
 * @file: the open file
 * @ubuf: the user's buffer
 * @count: its size
 * @ppos: the file position
 *
 * Return: the number of bytes copied, 0 at the end, or a negative errno.
 */
static ssize_t c_read(struct file *file, char __user *ubuf, size_t count,
		      loff_t *ppos)
{
	/* TODO 4: copy c_data (c_len bytes) to user space, honouring *ppos */
	char snapshot[C_SIZE];
	size_t len;

	mutex_lock(&c_lock);
	len = c_len;
	memcpy(snapshot, c_data, len);
	mutex_unlock(&c_lock);

	return simple_read_from_buffer(ubuf, count, ppos, snapshot, len);
	/* skel: return -EINVAL; */
	/* END TODO 4 */
}

/**
 * c_write() - write subdir/c: replace its content
 * @file: the open file
 * @ubuf: the user's bytes
 * @count: how many
 * @ppos: the file position (a write must start at 0)
 *
 * Return: @count, or a negative errno (-ENOSPC when it does not fit).
 */
static ssize_t c_write(struct file *file, const char __user *ubuf,
		       size_t count, loff_t *ppos)
{
	/* TODO 5: replace c_data; refuse *ppos != 0 and writes of C_SIZE bytes or more */
	char *kbuf;

	if (*ppos != 0)
		return -EINVAL;
	if (count == 0)
		return 0;
	if (count > C_SIZE - 1)
		return -ENOSPC;

	kbuf = memdup_user_nul(ubuf, count);
	if (IS_ERR(kbuf))
		return PTR_ERR(kbuf);

	mutex_lock(&c_lock);
	memcpy(c_data, kbuf, count + 1);
	c_len = count;
	mutex_unlock(&c_lock);

	kfree(kbuf);
	*ppos = count;
	return count;
	/* skel: return -EINVAL; */
	/* END TODO 5 */
}

static const struct file_operations c_fops = {
	.owner = THIS_MODULE,
	.read = c_read,
	.write = c_write,
	.llseek = default_llseek,
};

static int __init mydebug_init(void)
{
	struct dentry *subdir;

	/*
	 * debugfs return values are deliberately not checked: the module
	 * works (without its files) when debugfs is disabled.
	 */
	/* TODO 1: create the directory "mydebug" at the top of debugfs */
	mydebug_root = debugfs_create_dir("mydebug", NULL);
	/* END TODO 1 */

	/* TODO 2: the file "a" for the u8 a, mode 0644 */
	debugfs_create_u8("a", 0644, mydebug_root, &a);
	/* END TODO 2 */

	/* TODO 3: the blob file "b" over the 32 bytes of b_data, mode 0644 */
	debugfs_create_blob("b", 0644, mydebug_root, &b_blob);
	/* skel: (void)b_blob; */
	/* END TODO 3 */

	/* TODO 4: the directory "subdir" and in it "c" with c_fops, mode 0644 */
	subdir = debugfs_create_dir("subdir", mydebug_root);
	debugfs_create_file("c", 0644, subdir, NULL, &c_fops);
	/* skel: (void)subdir; */
	/* END TODO 4 */
	return 0;
}

static void __exit mydebug_exit(void)
{
	/* TODO 1: remove the whole tree: removal waits for open files */
	debugfs_remove_recursive(mydebug_root);
	/* END TODO 1 */
}

module_init(mydebug_init);
module_exit(mydebug_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("dbgscaffold labs");
MODULE_DESCRIPTION("debugfs basics: a u8, a blob and a char buffer");
