mod container;
