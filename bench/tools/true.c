/* The program bench-startup starts: it returns at once. */
int main(void) { return 0; }
